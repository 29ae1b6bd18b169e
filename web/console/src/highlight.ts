// Where guardrails hit, to the character: each input decision records the
// field it fired in (`messages[1].content`) and the span of the hit in that
// field's text as received. Masked spans in the text as forwarded are
// derived by aligning it with the text as received around those spans.
// Pure functions: the page renders the result as text nodes only.

export interface Decision {
  direction: 'input' | 'output';
  rule: string;
  action: string;
  entity?: string;
  field?: string;
  span?: { start: number; end: number };
}

export interface Mark {
  start: number;
  end: number;
  kind: 'hit' | 'masked';
  /** What to tell the reader: the rule, its action and the entity. */
  label: string;
}

export interface Field {
  /** As the API names it: `messages[0].content`. */
  path: string;
  role: string;
  received: { text: string; marks: Mark[] };
  /** Present when the forwarded text differs from the received one. */
  forwarded?: { text: string; marks: Mark[] };
}

/** `messages[2].content[0].text` → ['messages', 2, 'content', 0, 'text']. */
export function parsePath(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

function at(body: unknown, path: Array<string | number>): unknown {
  let node = body;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

/** The prompt's text fields in reading order: chat messages (and their text parts), `prompt`, `input`, `instructions`, `system`. */
function promptFields(body: unknown): Array<{ path: string; role: string }> {
  const out: Array<{ path: string; role: string }> = [];
  if (body === null || typeof body !== 'object') return out;
  const b = body as Record<string, unknown>;
  for (const key of ['instructions', 'system']) if (typeof b[key] === 'string') out.push({ path: key, role: 'system' });
  const turns = (key: string): void => {
    if (!Array.isArray(b[key])) {
      if (typeof b[key] === 'string') out.push({ path: key, role: 'user' });
      return;
    }
    (b[key] as unknown[]).forEach((m, i) => {
      if (typeof m === 'string') return void out.push({ path: `${key}[${i}]`, role: 'user' });
      const message = m as { role?: unknown; content?: unknown } | null;
      const role = typeof message?.role === 'string' ? message.role : 'user';
      if (typeof message?.content === 'string') out.push({ path: `${key}[${i}].content`, role });
      else if (Array.isArray(message?.content)) {
        message.content.forEach((p, j) => {
          if (typeof (p as { text?: unknown })?.text === 'string') out.push({ path: `${key}[${i}].content[${j}].text`, role });
        });
      }
    });
  };
  turns('messages');
  turns('prompt');
  turns('input');
  return out;
}

function label(d: Decision): string {
  return `${d.rule}: ${d.action}${d.entity ? ` ${d.entity}` : ''}`;
}

/**
 * Where the masked spans of `received` ended up in `forwarded`: the text
 * between spans is unchanged, so each replacement runs from the end of one
 * unchanged stretch to the start of the next. Undefined if the texts do not
 * line up that way (then nothing is marked rather than the wrong thing).
 */
export function alignMasks(received: string, forwarded: string, spans: ReadonlyArray<{ start: number; end: number; label: string }>): Mark[] | undefined {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const merged: Array<{ start: number; end: number; labels: string[] }> = [];
  for (const s of sorted) {
    if (s.start < 0 || s.end > received.length || s.end <= s.start) return undefined;
    const last = merged[merged.length - 1];
    // Touching spans too: with no text between them, where one replacement ends is unknowable.
    if (last && s.start <= last.end) {
      last.end = Math.max(last.end, s.end);
      last.labels.push(s.label);
    } else merged.push({ start: s.start, end: s.end, labels: [s.label] });
  }
  const marks: Mark[] = [];
  let fromReceived = 0;
  let fromForwarded = 0;
  for (let i = 0; i < merged.length; i++) {
    const span = merged[i]!;
    const same = received.slice(fromReceived, span.start);
    if (forwarded.slice(fromForwarded, fromForwarded + same.length) !== same) return undefined;
    const start = fromForwarded + same.length;
    const next = merged[i + 1];
    const following = received.slice(span.end, next ? next.start : received.length);
    let end: number;
    if (!next) {
      end = forwarded.length - following.length;
      if (end < start || forwarded.slice(end) !== following) return undefined;
    } else {
      end = following === '' ? start : forwarded.indexOf(following, start);
      if (end < 0) return undefined;
    }
    if (end > start) marks.push({ start, end, kind: 'masked', label: span.labels.join('; ') });
    fromReceived = span.end;
    fromForwarded = end;
  }
  return marks;
}

/** The prompt's fields with the exact spans of input guardrail hits, and of masked text in the forwarded body. */
export function highlightFields(request: unknown, forwarded: unknown, decisions: readonly Decision[]): Field[] {
  const fields = promptFields(request);
  const input = decisions.filter((d) => d.direction === 'input' && d.field !== undefined && d.span !== undefined);
  // A hit in a field the prompt view does not list (a tool description, say) gets its own entry.
  for (const d of input) if (!fields.some((f) => f.path === d.field)) fields.push({ path: d.field!, role: 'field' });
  const out: Field[] = [];
  for (const { path, role } of fields) {
    const keys = parsePath(path);
    const text = at(request, keys);
    if (typeof text !== 'string') continue;
    const mine = input.filter((d) => d.field === path && d.span!.start >= 0 && d.span!.end <= text.length && d.span!.end > d.span!.start);
    const field: Field = { path, role, received: { text, marks: mine.map((d) => ({ start: d.span!.start, end: d.span!.end, kind: 'hit', label: label(d) })) } };
    const sent = forwarded === undefined ? undefined : at(forwarded, keys);
    if (typeof sent === 'string' && sent !== text) {
      const masks = alignMasks(
        text,
        sent,
        mine.filter((d) => d.action === 'mask').map((d) => ({ start: d.span!.start, end: d.span!.end, label: label(d) })),
      );
      field.forwarded = { text: sent, marks: masks ?? [] };
    }
    out.push(field);
  }
  return out;
}

export interface Segment {
  /** Offset of the piece in the whole text. */
  start: number;
  text: string;
  marks: Mark[];
}

/** Cuts `text` at every mark boundary; each piece lists the marks covering it (overlapping hits stay visible). */
export function segments(text: string, marks: readonly Mark[]): Segment[] {
  const cuts = new Set([0, text.length]);
  for (const m of marks) {
    cuts.add(Math.max(0, Math.min(text.length, m.start)));
    cuts.add(Math.max(0, Math.min(text.length, m.end)));
  }
  const points = [...cuts].sort((a, b) => a - b);
  const out: Segment[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const [from, to] = [points[i]!, points[i + 1]!];
    if (to > from) out.push({ start: from, text: text.slice(from, to), marks: marks.filter((m) => m.start <= from && m.end >= to) });
  }
  return out;
}
