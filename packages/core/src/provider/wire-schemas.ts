import { z } from 'zod';

/*
 * What the provider sends, validated leniently: objects are loose because the provider keeps adding
 * fields, and fields we only log (timestamps, ids of related records) fall back to undefined instead of
 * failing a whole response. Only what Recast acts on is strict: a task without a string `id` is useless.
 * Go's nil slices arrive as `null`, hence the nullish arrays.
 */

/** A string we only display or log: anything else degrades to undefined. */
const infoText = z.string().nullish().catch(undefined);

export const TaskIdSchema = z.string().trim().min(1, 'task id must be a non-empty string');

export const TaskResultWireSchema = z.looseObject({
  id: TaskIdSchema,
  short_id: infoText,
  // A number today, a name tomorrow (the SDK already parses both): interpreted by parseTaskStatus.
  status: z.unknown().optional(),
  status_text: z.unknown().optional(),
  output: z.unknown().optional(),
  error: z.unknown().optional(),
  session_id: infoText,
  created_at: infoText,
  updated_at: infoText,
  run_at: infoText,
});
export type TaskResultWire = z.infer<typeof TaskResultWireSchema>;

export const TaskLogWireSchema = z.looseObject({
  id: infoText,
  created_at: infoText,
  task_id: infoText,
  // 0 build, 1 run, 2 serve, 3 setup, 4 task.
  log_type: z.number().int().nullish().catch(undefined),
  content: z.string().nullish().catch(undefined),
});
export type TaskLogWire = z.infer<typeof TaskLogWireSchema>;

export const TaskEventWireSchema = z.looseObject({
  id: infoText,
  created_at: infoText,
  event_time: infoText,
  status: z.unknown().optional(),
});
export type TaskEventWire = z.infer<typeof TaskEventWireSchema>;

export const TaskWireSchema = TaskResultWireSchema.extend({
  input: z.unknown().optional(),
  logs: z.array(TaskLogWireSchema).nullish().catch(undefined),
  events: z.array(TaskEventWireSchema).nullish().catch(undefined),
  usage_events: z.array(z.unknown()).nullish().catch(undefined),
  webhook: infoText,
  app_id: infoText,
  app_version_id: infoText,
});
export type TaskWire = z.infer<typeof TaskWireSchema>;

export const TaskStatusWireSchema = z.looseObject({
  id: TaskIdSchema,
  status: z.unknown().optional(),
  status_text: z.unknown().optional(),
  updated_at: infoText,
});
export type TaskStatusWire = z.infer<typeof TaskStatusWireSchema>;

export const TaskListWireSchema = z.looseObject({
  items: z.array(TaskWireSchema).nullish(),
  next_cursor: z.string().nullish(),
  prev_cursor: infoText,
  has_next: z.boolean().nullish(),
  has_previous: z.boolean().nullish().catch(undefined),
  items_per_page: z.number().nullish().catch(undefined),
  total_items: z.number().nullish().catch(undefined),
});
export type TaskListWire = z.infer<typeof TaskListWireSchema>;

/** RFC 9457 problem details, plus the older `{error: {code, message}}` and `{message}` shapes. */
export const ProblemWireSchema = z.looseObject({
  type: z.string().nullish().catch(undefined),
  title: z.string().nullish().catch(undefined),
  status: z.number().nullish().catch(undefined),
  detail: z.string().nullish().catch(undefined),
  message: z.string().nullish().catch(undefined),
  error: z
    .union([z.string(), z.looseObject({ code: infoText, message: infoText })])
    .nullish()
    .catch(undefined),
});
export type ProblemWire = z.infer<typeof ProblemWireSchema>;

/** The 412 body: no envelope, a list of unmet requirements (secrets, integrations, scopes). */
export const RequirementsWireSchema = z.looseObject({
  satisfied: z.boolean().nullish().catch(undefined),
  errors: z.array(z.unknown()),
});
export type RequirementsWire = z.infer<typeof RequirementsWireSchema>;

/**
 * An http(s) URL. The emulator hands out http(s) file URIs; the public docs do not show the real
 * API's `uri` shape (inferred: an https URL on the provider's storage, like its output links). A
 * different shape fails loudly here, in one place, rather than as a refused job later.
 */
const HttpUrlText = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' });

/** `POST /files` answers one record per requested file: where to PUT the bytes and the file's uri. */
export const FileRecordWireSchema = z.looseObject({
  id: infoText,
  uri: HttpUrlText,
  upload_url: HttpUrlText,
});
export const FileRecordsWireSchema = z.array(FileRecordWireSchema).min(1);
export type FileRecordWire = z.infer<typeof FileRecordWireSchema>;
