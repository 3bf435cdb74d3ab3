export interface RequestRecord {
  /** Epoch ms when the request arrived. */
  at: number;
  method: string;
  /** The route pattern, e.g. `/tasks/:id`, or `*` for unmatched paths. */
  route: string;
  status: number;
}

/** Bounded so a long benchmark cannot grow the log without limit; the newest entries win. */
const MAX_REQUESTS = 20_000;

export class Stats {
  submits = 0;
  inFlightMax = 0;
  private requests: RequestRecord[] = [];

  recordRequest(record: RequestRecord): void {
    this.requests.push(record);
    if (this.requests.length > MAX_REQUESTS) this.requests.splice(0, this.requests.length - MAX_REQUESTS);
  }

  recordSubmit(inFlight: number): void {
    this.submits += 1;
    this.inFlightMax = Math.max(this.inFlightMax, inFlight);
  }

  requestLog(): RequestRecord[] {
    return [...this.requests];
  }

  reset(): void {
    this.submits = 0;
    this.inFlightMax = 0;
    this.requests = [];
  }
}
