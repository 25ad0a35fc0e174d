export type DiffLine = { op: 'same' | 'add' | 'del'; text: string; oldNo?: number; newNo?: number };

/** Longest-common-subsequence line diff; `undefined` when the texts are too large to diff in the browser. */
export function lineDiff(before: string, after: string, maxCells = 8_000_000): DiffLine[] | undefined {
  const a = before.split('\n');
  const b = after.split('\n');
  // Common head and tail first: most prompt edits touch a few lines.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const n = am.length;
  const m = bm.length;
  if ((n + 1) * (m + 1) > maxCells) return undefined;
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] = am[i] === bm[j] ? lcs[(i + 1) * width + j + 1] + 1 : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
    }
  }
  const out: DiffLine[] = [];
  let oldNo = 1;
  let newNo = 1;
  for (let k = 0; k < head; k++) out.push({ op: 'same', text: a[k], oldNo: oldNo++, newNo: newNo++ });
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && am[i] === bm[j]) {
      out.push({ op: 'same', text: am[i], oldNo: oldNo++, newNo: newNo++ });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])) {
      out.push({ op: 'del', text: am[i], oldNo: oldNo++ });
      i++;
    } else {
      out.push({ op: 'add', text: bm[j], newNo: newNo++ });
      j++;
    }
  }
  for (let k = a.length - tail; k < a.length; k++) out.push({ op: 'same', text: a[k], oldNo: oldNo++, newNo: newNo++ });
  return out;
}
