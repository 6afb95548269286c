/**
 * Reading one value out of a Cookie header or a query string without parsing all of it: the
 * hashing balancers and sticky sessions need a single named value per request.
 */

/** The value of cookie `name` in a Cookie header (`a=1; b=2`), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let at = 0;
  const n = header.length;
  while (at < n) {
    while (at < n && (header.charCodeAt(at) === 32 || header.charCodeAt(at) === 59)) at++;
    const end = header.indexOf(';', at);
    const stop = end === -1 ? n : end;
    const eq = header.indexOf('=', at);
    if (eq !== -1 && eq < stop && eq - at === name.length && header.startsWith(name, at)) {
      let value = header.slice(eq + 1, stop).trim();
      if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) value = value.slice(1, -1);
      return value;
    }
    at = stop + 1;
  }
  return undefined;
}

/** The first value of parameter `name` in a query string (with or without its leading `?`), decoded. */
export function queryValue(query: string, name: string): string | undefined {
  if (query.length === 0) return undefined;
  let at = query.charCodeAt(0) === 63 ? 1 : 0;
  const n = query.length;
  while (at < n) {
    const end = query.indexOf('&', at);
    const stop = end === -1 ? n : end;
    const eq = query.indexOf('=', at);
    const keyEnd = eq !== -1 && eq < stop ? eq : stop;
    if (keyEnd - at === name.length && query.startsWith(name, at)) {
      const raw = keyEnd === stop ? '' : query.slice(keyEnd + 1, stop);
      try {
        return decodeURIComponent(raw.replaceAll('+', ' '));
      } catch {
        return raw;
      }
    }
    at = stop + 1;
  }
  return undefined;
}

/**
 * `target` with the values of the query parameters named in `names` replaced by `[REDACTED]`
 * (credentials a policy reads from the query: the access log must not keep them). A name matches
 * as written or percent-decoded.
 */
export function redactQuery(target: string, names: ReadonlySet<string>): string {
  const q = target.indexOf('?');
  if (q === -1 || names.size === 0) return target;
  const parts = target.slice(q + 1).split('&');
  let changed = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    const raw = eq === -1 ? part : part.slice(0, eq);
    let name = raw;
    try {
      name = decodeURIComponent(raw.replaceAll('+', ' '));
    } catch {
      // not percent-encoded validly: compared as written
    }
    if (names.has(raw) || names.has(name)) {
      parts[i] = `${raw}=[REDACTED]`;
      changed = true;
    }
  }
  return changed ? `${target.slice(0, q)}?${parts.join('&')}` : target;
}

/** `target` (path and query) without query parameter `name`; the same string when it has none. */
export function withoutQueryParam(target: string, name: string): string {
  const q = target.indexOf('?');
  if (q < 0 || (!target.includes(`${name}=`, q) && !target.includes('%', q))) return target;
  const kept = target
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      const raw = eq < 0 ? pair : pair.slice(0, eq);
      try {
        return decodeURIComponent(raw.replaceAll('+', ' ')) !== name;
      } catch {
        return true;
      }
    });
  return kept.length === 0 ? target.slice(0, q) : `${target.slice(0, q)}?${kept.join('&')}`;
}

/** A Cookie header value without cookie `name`; undefined when nothing is left. */
export function withoutCookie(header: string, name: string): string | undefined {
  const kept = header.split(';').filter((part) => {
    const eq = part.indexOf('=');
    return (eq < 0 ? part : part.slice(0, eq)).trim() !== name;
  });
  return kept.length === 0 ? undefined : kept.map((p) => p.trim()).join('; ');
}
