import type { ChaosSystem } from './harness.js';

/**
 * A mix of jobs: two resolutions (two prices), two clips (2 s and 3 s of billed video, so every
 * job's cost depends on its own task's output) and three tenants (three fair-share lines). The
 * `duration_seconds` hint keeps the API from probing the video.
 */
export function jobBody(system: ChaosSystem) {
  return (index: number): Record<string, unknown> => {
    const long = index % 5 === 0;
    return {
      video: system.fixture(long ? 'clip-3s.mov' : 'clip-2s-faststart.mp4'),
      images: [system.fixture('person-a.png')],
      duration_seconds: long ? 3 : 2,
      resolution: index % 2 === 0 ? '720p' : '1080p',
      metadata: { chaos: system.scenario, index },
    };
  };
}

export function tenantHeader(index: number): Record<string, string> {
  return { 'x-tenant': ['acme', 'globex', 'initech'][index % 3]! };
}
