/**
 * checkHeaderBlock against RFC 7541's example blocks (Appendix C, Huffman included) and against
 * the fields nghttp2 drops. Huffman strings below were encoded with nghttp2's own code table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHeaderBlock, type BlockVerdict } from './hpack-fields.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const raw = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
const huff = (h: string): Buffer => Buffer.concat([Buffer.from([0x80 | hex(h).length]), hex(h)]);
/** GET, http, / (static table entries 2, 6, 4). */
const GET = hex('82 86 84');

/** A literal with a new name: `first` 0x00 without indexing, 0x10 never indexed, 0x40 incremental indexing. */
function literal(first: number, name: Buffer, value: Buffer): Buffer {
  return Buffer.concat([GET, Buffer.from([first]), name, value]);
}
/** A literal whose name is static entry `index` (38 is `host`, 58 `user-agent`), without indexing. */
function indexedName(index: number, value: Buffer): Buffer {
  return Buffer.concat([GET, Buffer.from([0x0f, index - 15]), value]);
}

const cases: Array<[string, Buffer, BlockVerdict]> = [
  ['RFC 7541 C.3.1 (raw literals)', hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'), 'ok'],
  ['RFC 7541 C.4.1 (Huffman)', hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'), 'ok'],
  ['RFC 7541 C.4.2 (dynamic index, Huffman)', hex('8286 84be 5886 a8eb 1064 9cbf'), 'ok'],
  ['RFC 7541 C.4.3 (Huffman name and value)', hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'), 'ok'],
  [
    'RFC 7541 C.6.1 (response, Huffman)',
    hex('4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3'),
    'ok',
  ],
  ['a value with HTAB inside and obs-text', literal(0x00, raw('x-v'), raw('a\tb\xff')), 'ok'],
  ['an empty value', literal(0x00, raw('x-v'), raw('')), 'ok'],
  ['a long value (multi-byte length)', literal(0x00, raw('x-v'), Buffer.concat([hex('7f 81 01'), Buffer.alloc(128 + 127, 'v')])), 'ok'],
  ['CR in a value', literal(0x00, raw('x-v'), raw('a\rb')), 'malformed'],
  ['LF in a value', literal(0x00, raw('x-v'), raw('a\nb')), 'malformed'],
  ['NUL in a value', literal(0x00, raw('x-v'), raw('a\0b')), 'malformed'],
  ['DEL in a value', literal(0x00, raw('x-v'), raw('a\x7fb')), 'malformed'],
  ['leading space in a value', literal(0x00, raw('x-v'), raw(' a')), 'malformed'],
  ['trailing tab in a value', literal(0x00, raw('x-v'), raw('a\t')), 'malformed'],
  ['a space in a name', literal(0x00, raw('x y'), raw('1')), 'malformed'],
  ['a colon in a name', literal(0x00, raw('x:y'), raw('1')), 'malformed'],
  ['an upper-case name', literal(0x00, raw('X-Upper'), raw('1')), 'malformed'],
  ['an empty name', literal(0x00, raw(''), raw('1')), 'malformed'],
  ['a name that is only a colon', literal(0x00, raw(':'), raw('1')), 'malformed'],
  ['never indexed, LF in the value', literal(0x10, raw('x-v'), raw('a\nb')), 'malformed'],
  ['incremental indexing, LF in the value', literal(0x40, raw('x-v'), raw('a\nb')), 'malformed-indexed'],
  ['incremental indexing, a space in the name', literal(0x40, raw('x y'), raw('1')), 'malformed-indexed'],
  ['a bad field after good ones', Buffer.concat([literal(0x00, raw('x-a'), raw('1')), hex('00'), raw('x-b'), raw('a\0')]), 'malformed'],
  ['Huffman: LF in a value', literal(0x00, raw('x-v'), huff('1fffffff91ff')), 'malformed'],
  ['Huffman: CR in a value', literal(0x00, raw('x-v'), huff('1fffffffb1ff')), 'malformed'],
  ['Huffman: NUL in a value', literal(0x00, raw('x-v'), huff('1ffe23')), 'malformed'],
  ['Huffman: leading space in a value', literal(0x00, raw('x-v'), huff('52828e4f')), 'malformed'],
  ['Huffman: a space in a name', literal(0x00, huff('f2a7af'), raw('1')), 'malformed'],
  ['Huffman: a colon in a name', literal(0x00, huff('f373d7'), raw('1')), 'malformed'],
  ['Huffman: an upper-case name', literal(0x00, huff('fc5b857596cf'), raw('1')), 'malformed'],
  ['Huffman: a good name and value', literal(0x00, huff('3f5f'), huff('94d5156ee3a2d2ff')), 'ok'],
  ['static name with a bad value', indexedName(58, raw('a\nb')), 'malformed'],
  ['Host (static name) that is no authority', indexedName(38, raw('a/b')), 'malformed'],
  ['Host (static name) with userinfo', indexedName(38, raw('u@a')), 'malformed'],
  ['Host (literal name) with a space', literal(0x00, raw('host'), raw('a b')), 'malformed'],
  ['Host (static name) host:port', indexedName(38, raw('a.example:8080')), 'ok'],
  ['a name that only starts like host is a plain field', literal(0x00, raw('hostx'), raw('a b')), 'ok'],
  // Undecodable blocks are nghttp2's to refuse (COMPRESSION_ERROR): not ours to judge.
  ['Huffman with EOS inside', literal(0x00, raw('x-v'), huff('1fffffffff')), 'ok'],
  ['a truncated string', Buffer.concat([GET, hex('00 03 78 2d')]), 'ok'],
];

for (const [what, block, verdict] of cases) {
  test(`checkHeaderBlock: ${what} → ${verdict}`, () => {
    assert.equal(checkHeaderBlock(block), verdict);
  });
}
