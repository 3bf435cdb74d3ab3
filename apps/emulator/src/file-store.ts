import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { newId, newShortId } from './ids.js';

export interface FileRequest {
  filename?: string | undefined;
  content_type?: string | undefined;
  path?: string | undefined;
  size?: number | undefined;
}

interface StoredFile {
  id: string;
  shortId: string;
  createdAt: string;
  updatedAt: string;
  filename: string;
  contentType: string;
  path: string;
  declaredSize: number;
  bytes: Buffer | undefined;
}

const UPLOAD_TTL_MS = 60 * 60 * 1000;

/**
 * File records and their bytes. Upload URLs are presigned like S3's: no bearer token, an expiry and
 * an HMAC in the query, so a client that forgets to PUT to the exact URL it was given fails here too.
 */
export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  /** Every uri handed out → its file id: the app reads its own storage, not its public URL. */
  private readonly uris = new Map<string, string>();
  private readonly secret = randomBytes(32);

  create(request: FileRequest, baseUrl: string, now: number = Date.now()): Record<string, unknown> {
    const at = new Date(now).toISOString();
    const file: StoredFile = {
      id: newId(now),
      shortId: newShortId(),
      createdAt: at,
      updatedAt: at,
      filename: safeName(request.filename),
      contentType: request.content_type || 'application/octet-stream',
      path: request.path ?? '',
      declaredSize: request.size ?? 0,
      bytes: undefined,
    };
    this.files.set(file.id, file);
    const expires = Math.floor((now + UPLOAD_TTL_MS) / 1000);
    const uploadUrl = `${baseUrl}/uploads/${file.id}?expires=${expires}&signature=${this.sign(file.id, expires)}`;
    const view = this.view(file, baseUrl, uploadUrl);
    this.uris.set(String(view.uri), file.id);
    return view;
  }

  /**
   * A uri this store handed out: `missing` while its bytes were never PUT, undefined for any
   * other URL (which the app downloads like the real one does).
   */
  resolve(uri: string): { bytes: Buffer; contentType: string } | 'missing' | undefined {
    const id = this.uris.get(uri);
    if (id === undefined) return undefined;
    return this.get(id) ?? 'missing';
  }

  /** Records created and files whose bytes arrived, for the admin state. */
  counts(): { records: number; uploaded: number; bytes: number } {
    let uploaded = 0;
    let bytes = 0;
    for (const file of this.files.values()) {
      if (!file.bytes) continue;
      uploaded++;
      bytes += file.bytes.length;
    }
    return { records: this.files.size, uploaded, bytes };
  }

  /** Checks the presigned query; returns a reason when it does not hold. */
  verify(
    id: string,
    expires: string | undefined,
    signature: string | undefined,
    now = Date.now(),
  ): string | null {
    if (!this.files.has(id)) return 'no such upload';
    const expiresAt = Number(expires);
    if (!expires || !Number.isInteger(expiresAt) || !signature) return 'missing signature';
    if (expiresAt * 1000 < now) return 'upload URL expired';
    const expected = Buffer.from(this.sign(id, expiresAt));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given))
      return 'signature does not match';
    return null;
  }

  put(id: string, bytes: Buffer, contentType: string | undefined): boolean {
    const file = this.files.get(id);
    if (!file) return false;
    file.bytes = bytes;
    if (contentType) file.contentType = contentType;
    file.updatedAt = new Date().toISOString();
    return true;
  }

  get(id: string): { bytes: Buffer; contentType: string } | undefined {
    const file = this.files.get(id);
    if (!file?.bytes) return undefined;
    return { bytes: file.bytes, contentType: file.contentType };
  }

  clear(): void {
    this.files.clear();
    this.uris.clear();
  }

  private sign(id: string, expires: number): string {
    return createHmac('sha256', this.secret).update(`${id}:${expires}`).digest('hex');
  }

  private view(file: StoredFile, baseUrl: string, uploadUrl: string): Record<string, unknown> {
    const uri = `${baseUrl}/files/${file.id}/${encodeURIComponent(file.filename)}`;
    return {
      id: file.id,
      short_id: file.shortId,
      created_at: file.createdAt,
      updated_at: file.updatedAt,
      user_id: 'usr_emulator',
      team_id: 'team_emulator',
      visibility: 'private',
      path: file.path,
      remote_path: `files/${file.id}/${file.filename}`,
      upload_url: uploadUrl,
      uri,
      content_type: file.contentType,
      size: file.declaredSize,
      filename: file.filename,
      category: categoryOf(file.contentType),
      rating: 'safe',
    };
  }
}

function safeName(name: string | undefined): string {
  const cleaned = (name ?? '').replace(/[^\w.-]+/g, '_').slice(0, 200);
  return cleaned === '' ? 'file' : cleaned;
}

function categoryOf(contentType: string): string {
  const [kind] = contentType.split('/');
  return kind === 'image' || kind === 'video' || kind === 'audio' ? kind : 'other';
}
