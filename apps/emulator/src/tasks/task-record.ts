import type { AppInput, Resolution, RunRequest } from '../app-input.js';
import type { StatusName } from '../status.js';

export interface TaskLogRecord {
  id: string;
  createdAt: string;
  /** 0 build, 1 run, 2 serve, 3 setup, 4 task. */
  logType: 0 | 1 | 2 | 3 | 4;
  content: string;
}

export interface TaskEventRecord {
  id: string;
  at: string;
  status: StatusName;
}

export interface TaskOutput {
  video: string;
  seed: number;
  output_meta: {
    outputs: Array<{
      type: 'video';
      width: number;
      height: number;
      resolution: Resolution;
      seconds: number;
      fps: number | null;
      extra: { resolution: Resolution };
    }>;
  };
}

/** Every random decision about a task, drawn once at submit so its fate follows the request order. */
export interface TaskFate {
  fail: boolean;
  webhookDrop: boolean;
  webhookDuplicate: boolean;
  webhookReorder: boolean;
  webhookDelayDraw: number;
  seed: number;
}

export interface UsageEventRecord {
  id: string;
  at: string;
  quantity: number;
}

export interface TaskRecord {
  /** Submission order; the list cursor and the tie-break for equal timestamps. */
  seq: number;
  id: string;
  shortId: string;
  createdAt: string;
  updatedAt: string;
  status: StatusName;
  /** The input as submitted (what GET shows) and as the app reads it (defaults applied). */
  rawInput: Record<string, unknown>;
  input: AppInput;
  request: Omit<RunRequest, 'input' | 'app'>;
  appVersionId: string;
  sessionId: string | undefined;
  /** Base URL for links handed out for this task (output video). */
  baseUrl: string;
  output: TaskOutput | null;
  error: string | undefined;
  logs: TaskLogRecord[];
  events: TaskEventRecord[];
  usageEvents: UsageEventRecord[];
  fate: TaskFate;
  /** The last non-terminal state, replayed as the stale webhook when reordering. */
  lastActive: { status: StatusName; at: string };
  /** Key of the source bytes in the blob store once downloaded. */
  sourceKey: string | undefined;
  completedAt: string | undefined;
}

export type TaskField =
  | 'status'
  | 'status_text'
  | 'updated_at'
  | 'logs'
  | 'events'
  | 'output'
  | 'error'
  | 'usage_events';
