// Text that came from a prompt, a model, or a person (comments, names) is
// shown only as text nodes, never parsed as HTML. Control and bidi
// characters are shown as visible escapes, so a prompt cannot reorder or hide
// what an approver reads; masking placeholders are marked.
import type { ComponentChildren } from 'preact';
import { segments, type Mark } from './highlight';

/** C0/C1 controls (but tab and newline), bidi embeddings, overrides and isolates, and invisible format characters. */
const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;
/** `[EMAIL_1]`, `[CREDIT_CARD:3fa1]`: what the masker writes in place of an entity. */
const PLACEHOLDER = /\[[A-Z][A-Z0-9_]*(?:_\d+|:[0-9a-f]{4,})\]/g;

export function escapeHidden(text: string): string {
  return text.replace(HIDDEN, (c) => `\\u{${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}}`);
}

/** Splits into plain text, visible escapes and placeholders, each its own text node. */
export function Untrusted({ text, marks = true }: { text: string; marks?: boolean }) {
  const parts: ComponentChildren[] = [];
  const pattern = new RegExp(`${HIDDEN.source}|${marks ? PLACEHOLDER.source : '(?!)'}`, 'g');
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    const at = match.index ?? 0;
    if (at > last) parts.push(text.slice(last, at));
    const value = match[0];
    if (value.startsWith('[')) {
      parts.push(
        <mark class="masked" title="masked by a guardrail">
          {value}
        </mark>,
      );
    } else {
      parts.push(
        <span class="hidden-char" title="an invisible or direction-changing character">
          {escapeHidden(value)}
        </span>,
      );
    }
    last = at + value.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return (
    <bdi class="untrusted" dir="ltr">
      {parts}
    </bdi>
  );
}

/** Any JSON value from an API (a prompt, a request body) as indented text. */
export function UntrustedJson({ value }: { value: unknown }) {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2) ?? '';
  return (
    <pre class="untrusted-block">
      <Untrusted text={text} />
    </pre>
  );
}

export function person(p: { name?: string | null; email?: string | null; subject: string }): string {
  return escapeHidden(p.name ? `${p.name} <${p.email ?? p.subject}>` : (p.email ?? p.subject));
}

export function when(ms: number | null | undefined): string {
  if (!ms) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function ago(ms: number, now = Date.now()): string {
  return span(now - ms);
}

export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${m % 60}m`;
}

/**
 * Untrusted text with exact spans marked (guardrail hits, masked text): each
 * piece is a text node, inside a <mark> when a span covers it. Overlapping
 * spans split into pieces that name every span covering them.
 */
export function Marked({ text, marks }: { text: string; marks: readonly Mark[] }) {
  return (
    <bdi class="untrusted" dir="ltr">
      {segments(text, marks).map((piece) => {
        if (piece.marks.length === 0) return <Untrusted key={piece.start} text={piece.text} marks={false} />;
        const kind = piece.marks.some((m) => m.kind === 'hit') ? 'hit' : 'masked';
        const labels = piece.marks.map((m) => m.label).join('; ');
        return (
          <mark key={piece.start} class={kind} title={labels} data-start={piece.start} data-end={piece.start + piece.text.length}>
            <Untrusted text={piece.text} marks={false} />
            <span class="sr-only"> ({kind === 'hit' ? 'guardrail hit' : 'masked'}: {labels})</span>
          </mark>
        );
      })}
    </bdi>
  );
}
