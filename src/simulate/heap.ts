/**
 * The simulator's event queue: a binary min-heap on (time, seq). `seq` is the order of scheduling,
 * so events at the same virtual time come out in the order they were scheduled and every run of the
 * same seed replays the same way.
 */

/** Something that happens at a virtual time (ms). */
export interface Timed {
  time: number;
  /** Set by the heap on push: the tie-breaker. */
  seq: number;
}

/** A min-heap of events; push stamps `seq`, pop returns the earliest (the first scheduled on a tie). */
export class EventHeap<T extends Timed> {
  #items: T[] = [];
  #seq = 0;

  get size(): number {
    return this.#items.length;
  }

  /** The earliest event, without removing it; undefined when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    item.seq = this.#seq++;
    const items = this.#items;
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, items[parent])) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = item;
  }

  /** Removes and returns the earliest event; undefined when empty. */
  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    const n = items.length;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(items[child + 1], items[child])) child++;
      if (!before(items[child], last)) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
    return top;
  }
}

function before(a: Timed, b: Timed): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
