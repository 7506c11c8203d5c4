// How money, times and pictures' addresses are written on the page (the transcript's cards and
// the admin view share them).

const USD = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

/** An amount in dollars (`19.99`) as `$19.99`; anything else as it is. */
export function dollars(amount: unknown): string {
  return typeof amount === 'number' && Number.isFinite(amount) ? USD.format(amount) : String(amount ?? '');
}

/** An amount in cents (`1999`) as `$19.99`. */
export function cents(amount: number): string {
  return USD.format(amount / 100);
}

/** A unix time in ms as a short local date and time (`—` for none). */
export function when(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * A picture's address as the page may load it: a path (`/images/products/P021.svg`) is taken from
 * the server at `base`; http(s) and data:image URLs stay; anything else gives `null` (no picture).
 */
export function pictureSrc(url: unknown, base: string): string | null {
  if (typeof url !== 'string' || !url) return null;
  if (url.startsWith('/') && !url.startsWith('//')) return base.replace(/\/+$/, '') + url;
  if (/^https?:\/\//i.test(url) || /^data:image\//i.test(url)) return url;
  return null;
}
