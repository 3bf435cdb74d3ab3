import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// No Docker engine runs in CI, so the compose file is checked statically: the Redis settings
// that keep jobs safe, and that every service's build and command point at files that exist.
const root = fileURLToPath(new URL('../../', import.meta.url));
const compose = parse(readFileSync(`${root}docker-compose.yml`, 'utf8')) as {
  services: Record<
    string,
    {
      image?: string;
      command?: string[] | string;
      build?: { context: string; dockerfile: string };
      environment?: Record<string, string>;
      depends_on?: Record<string, { condition: string }>;
    }
  >;
};

function argv(command: string[] | string | undefined): string[] {
  return Array.isArray(command) ? command.map(String) : (command ?? '').split(/\s+/).filter(Boolean);
}

describe('docker-compose.yml', () => {
  it('runs redis, postgres, api, worker and emulator', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'emulator', 'postgres', 'redis', 'worker']);
  });

  it('gives the API and the worker the postgres service as their history database, once it is healthy', () => {
    expect(compose.services.postgres?.image).toMatch(/^postgres:\d+/);
    for (const name of ['api', 'worker']) {
      const service = compose.services[name]!;
      expect(new URL(service.environment!.DATABASE_URL!.replace(/\$\{[^}]*\}/g, 'x')).host).toBe(
        'postgres:5432',
      );
      expect(service.depends_on?.postgres?.condition).toBe('service_healthy');
    }
  });

  it('runs Redis with AOF on and noeviction', () => {
    const args = argv(compose.services.redis?.command);
    expect(args[0]).toBe('redis-server');
    expect(args[args.indexOf('--appendonly') + 1]).toBe('yes');
    expect(args[args.indexOf('--maxmemory-policy') + 1]).toBe('noeviction');
  });

  for (const name of ['api', 'worker', 'emulator']) {
    it(`${name}: the Dockerfile and the command's entry file exist`, () => {
      const service = compose.services[name]!;
      expect(service.build?.context).toBe('.');
      const dockerfile = `${root}${service.build!.dockerfile}`;
      expect(existsSync(dockerfile)).toBe(true);
      const args = argv(service.command);
      expect(args.slice(0, 3)).toEqual(['node', '--import', 'tsx']);
      const entry = args[3]!;
      expect(existsSync(`${root}${entry}`)).toBe(true);
      // The image's default command runs the same entry, and copies what it needs.
      const text = readFileSync(dockerfile, 'utf8');
      expect(text).toContain(`CMD ["node", "--import", "tsx", "${entry}"]`);
      expect(text).toContain(`COPY apps/${name} apps/${name}`);
      for (const copied of text.matchAll(/^COPY (?!--from)(\S+)/gm)) {
        for (const path of copied[0]
          .replace(/^COPY /, '')
          .split(/\s+/)
          .slice(0, -1)) {
          expect(existsSync(`${root}${path}`), `${dockerfile}: ${path}`).toBe(true);
        }
      }
    });
  }
});
