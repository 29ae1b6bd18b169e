// Text from outside (prompts, model output, comments, reasons) printed to a
// terminal must not drive it: an escape sequence in a prompt could hide
// words from the approver reading it, rewrite earlier lines, or retitle the
// window, and bidirectional-override characters can reorder what is shown
// ("Trojan Source"). Such characters are shown as visible escapes instead.

/** C0 controls except tab and newline, DEL, C1 controls, and the Unicode bidi overrides and isolates. */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every character that could control the terminal shown as `\u{…}`. */
export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}
