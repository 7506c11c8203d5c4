// A picture file chosen in the settings, as a data: URL small enough for a session.update and
// for localStorage: scaled down to at most 1024 px a side and encoded as JPEG (PNG when it has
// transparency to keep).

/** The longest side a chosen picture keeps. */
export const MAX_SIDE = 1024;

/** The size a picture of `w`×`h` is scaled to (never up). */
export function fitted(w: number, h: number, max = MAX_SIDE): [number, number] {
  const scale = Math.min(1, max / Math.max(w, h));
  return [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
}

/** `file` as a data: URL, scaled to fit; rejects with a readable message if it is not a picture. */
export async function pictureUrl(file: File, keepAlpha = false): Promise<string> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(`${file.name} is not a picture this browser can read (use a PNG or JPEG).`);
  }
  const [w, h] = fitted(bitmap.width, bitmap.height);
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  canvas.getContext('2d')!.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  return keepAlpha ? canvas.toDataURL('image/png') : canvas.toDataURL('image/jpeg', 0.9);
}
