/**
 * Small DOM helpers shared by the Room components. All user text goes in with
 * `textContent`; no HTML from the server or from users is ever parsed.
 */

/** Create an element with a class and optional text (set through textContent). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export function button(
  label: string,
  className: string,
  onClick: () => void,
  title?: string
): HTMLButtonElement {
  const b = el('button', `noctis-rooms-button ${className}`, label);
  b.type = 'button';
  if (title) {
    b.title = title;
    b.setAttribute('aria-label', title);
  }
  b.addEventListener('click', ev => {
    ev.preventDefault();
    ev.stopPropagation();
    onClick();
  });
  return b;
}

export function formatTime(epochSeconds: number): string {
  if (!epochSeconds) {
    return '';
  }
  const d = new Date(epochSeconds * 1000);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], {
        dateStyle: 'short',
        timeStyle: 'short'
      });
}

export function formatAgo(epochSeconds: number): string {
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 60) {
    return 'seen just now';
  }
  if (s < 3600) {
    return `seen ${Math.floor(s / 60)} min ago`;
  }
  if (s < 86400) {
    return `seen ${Math.floor(s / 3600)} h ago`;
  }
  return `seen ${formatTime(epochSeconds)}`;
}

/** First line of a markdown body, for quotes (markdown left as typed). */
export function firstLine(body: string): string {
  const line =
    body
      .split('\n')
      .map(l => l.trim())
      .find(l => l.length > 0 && !l.startsWith('>')) ?? '';
  return line.length > 160 ? line.slice(0, 160) + '…' : line;
}

/** The body of a reply without the leading quote the server put in front. */
export function replyText(body: string): string {
  const lines = body.split('\n');
  let i = 0;
  while (i < lines.length && lines[i].startsWith('>')) {
    i++;
  }
  while (i < lines.length && lines[i].trim() === '') {
    i++;
  }
  return lines.slice(i).join('\n');
}

/** A study link may only open a relative path inside the server root. */
export function safeOpenPath(path: string | undefined): string | null {
  if (!path || typeof path !== 'string') {
    return null;
  }
  if (path.startsWith('/') || path.includes('\\') || /^[a-z]+:/i.test(path)) {
    return null;
  }
  if (path.split('/').some(part => part === '..')) {
    return null;
  }
  return path;
}
