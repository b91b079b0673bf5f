/** Small DOM builders: the page is plain TypeScript, so this is its whole "framework". */

type Child = Node | string | null | undefined | false;

/** Creates an element with attributes (strings; `true` for boolean ones) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
  return node;
}

/** The element with this id, which the page's HTML guarantees; a missing one is a build mistake. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`The page has no #${id}`);
  return node as T;
}

/** Sets text only when it changed, so screen readers and selection are not disturbed by re-renders. */
export function setText(node: Element, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

/** Saves a downloaded blob under name through a temporary link. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Tells screen-reader users about a change that happened away from their focus. */
export function announce(text: string): void {
  const region = byId('announcer');
  region.textContent = '';
  // A new text node in a cleared live region is read even when the text repeats.
  setTimeout(() => (region.textContent = text), 50);
}
