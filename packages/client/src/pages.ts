/** One page of a cursor-paged listing. */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** Every item of a cursor-paged listing, asking for the next page only when the last is used up. */
export async function* pages<T>(
  fetchPage: (cursor: string | undefined) => Promise<Page<T>>,
): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    yield* page.data;
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
}
