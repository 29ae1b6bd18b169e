// Colour only on a TTY, and never when NO_COLOR is set (no-color.org).
const enabled = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

const style = (open: number, close: number) => (text: string): string => (enabled ? `\x1b[${open}m${text}\x1b[${close}m` : text);

export const paint = {
  bold: style(1, 22),
  dim: style(2, 22),
  red: style(31, 39),
  green: style(32, 39),
  cyan: style(36, 39),
};
