// Masking decisions for the session record. A response can hold thousands
// of entities; the record keeps the first ones and counts the rest, so it
// stays bounded like everything else on the streaming path.
import type { BodyPath } from '../protocol/body-path.js';
import { formatPath } from '../protocol/body-path.js';
import type { Decision } from '../policy/guardrails-types.js';
import type { AppliedSpan } from './mask-text.js';

export const MAX_RECORDED_DECISIONS = 1000;

export class DecisionLog {
  readonly decisions: Decision[] = [];
  /** Decisions made but not kept, beyond MAX_RECORDED_DECISIONS. */
  omitted = 0;

  add(decision: Decision): void {
    if (this.decisions.length < MAX_RECORDED_DECISIONS) this.decisions.push(decision);
    else this.omitted += 1;
  }

  /** Records a span an output rule masked or ended the response on. */
  addApplied({ span, action }: AppliedSpan, path: BodyPath): void {
    const where = formatPath(path);
    this.add({
      rule: action.rule,
      action: action.action,
      type: span.type,
      span: { path, start: span.start, end: span.end },
      confidence: span.confidence,
      reason:
        action.action === 'mask'
          ? `${span.type} (${span.rule}) in ${where} masked (${action.strategy.kind})`
          : `${span.type} (${span.rule}) in ${where} ends the response`,
    });
  }
}
