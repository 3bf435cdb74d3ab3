import { createHash } from 'node:crypto';

export interface Blob {
  bytes: Buffer;
  contentType: string;
}

/**
 * Content-addressed bytes: a benchmark that submits the same fixture ten thousand times keeps one
 * copy of it, not ten thousand.
 */
export class BlobStore {
  private readonly blobs = new Map<string, Blob>();

  put(bytes: Buffer, contentType: string): string {
    const key = createHash('sha256').update(bytes).digest('hex');
    if (!this.blobs.has(key)) this.blobs.set(key, { bytes, contentType });
    return key;
  }

  get(key: string): Blob | undefined {
    return this.blobs.get(key);
  }

  clear(): void {
    this.blobs.clear();
  }
}
