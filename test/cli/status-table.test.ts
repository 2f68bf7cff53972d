import { describe, expect, it } from 'vitest';
import { humanAge, humanBytes, humanRtt, pathOf, statusTable, type ListedSession } from '../../src/cli/status-table.js';

describe('human units', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [23 * 1024 * 1024, '23 MiB'],
    [5 * 1024 ** 3, '5.0 GiB'],
  ])('humanBytes(%d) = %s', (bytes, text) => expect(humanBytes(bytes)).toBe(text));

  it.each([
    [0, '0s'],
    [42_900, '42s'],
    [187_000, '3m07s'],
    [7_500_000, '2h05m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d04h'],
  ])('humanAge(%d) = %s', (ms, text) => expect(humanAge(ms)).toBe(text));

  it.each([
    [null, '-'],
    [0.617, '0.62 ms'],
    [12.34, '12.3 ms'],
    [180.4, '180 ms'],
  ])('humanRtt(%s) = %s', (ms, text) => expect(humanRtt(ms)).toBe(text));
});

const established: ListedSession = {
  id: 'dcc4ee75-20a8-475a-b275-4c143f207f06',
  state: 'udp_established',
  family: 'ipv4',
  peer: '203.0.113.7:40000',
  rttMs: 0.617,
  bytesIn: 2048,
  bytesOut: 22,
  ageMs: 61_000,
};
const waiting: ListedSession = { id: 'a1', state: 'udp_waiting.ipv6', family: 'ipv6', peer: null, rttMs: null, bytesIn: 0, bytesOut: 0, ageMs: 900 };

describe('statusTable', () => {
  it('says so when there are no sessions', () => {
    expect(statusTable({ total: 0, sessions: [] })).toEqual(['no live sessions']);
  });

  it('one row per session under a header, columns aligned, "-" for what a session does not have yet', () => {
    expect(statusTable({ total: 2, sessions: [established, waiting] })).toEqual([
      'ID                                    STATE             PATH    FAMILY  PEER                   RTT       IN   OUT    AGE',
      'dcc4ee75-20a8-475a-b275-4c143f207f06  udp_established   direct  ipv4    203.0.113.7:40000  0.62 ms  2.0 KiB  22 B  1m01s',
      'a1                                    udp_waiting.ipv6  -       ipv6    -                        -      0 B   0 B     0s',
    ]);
  });

  it('says how many were left out when the server lists fewer than it has', () => {
    expect(statusTable({ total: 1500, sessions: [waiting] }).at(-1)).toBe('(1 of 1500 sessions listed)');
  });

  it('takes the path from the server when it reports one', () => {
    expect(pathOf({ ...established, path: 'relay' })).toBe('relay');
    expect(pathOf(established)).toBe('direct');
    expect(pathOf(waiting)).toBe('-');
  });
});
