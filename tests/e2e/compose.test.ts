import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// No Docker engine runs in CI, so the compose file is checked statically: the Redis settings
// that keep jobs safe, and that every service's build and command point at files that exist.
const root = fileURLToPath(new URL('../../', import.meta.url));
// Merge keys (`<<: *api`) as Docker Compose reads them: the failover profile reuses services.
const compose = parse(readFileSync(`${root}docker-compose.yml`, 'utf8'), { merge: true }) as {
  services: Record<
    string,
    {
      image?: string;
      command?: string[] | string;
      build?: { context: string; dockerfile: string };
      profiles?: string[];
      environment?: Record<string, string>;
      depends_on?: Record<string, { condition?: string }>;
    }
  >;
};
const FAILOVER = [
  'api-failover',
  'redis-primary',
  'redis-replica',
  'sentinel-1',
  'sentinel-2',
  'sentinel-3',
  'worker-failover',
];

function argv(command: string[] | string | undefined): string[] {
  return Array.isArray(command) ? command.map(String) : (command ?? '').split(/\s+/).filter(Boolean);
}

describe('docker-compose.yml', () => {
  it('runs redis, postgres, api, worker and emulator, and Redis as in production under the failover profile', () => {
    const byDefault = Object.entries(compose.services).filter(([, s]) => !s.profiles);
    expect(byDefault.map(([name]) => name).sort()).toEqual([
      'api',
      'emulator',
      'postgres',
      'redis',
      'worker',
    ]);
    const failover = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('failover'));
    expect(failover.map(([name]) => name).sort()).toEqual(FAILOVER);
  });

  it('gives the API and the worker the postgres service as their history database, once it is healthy', () => {
    expect(compose.services.postgres?.image).toMatch(/^postgres:\d+/);
    for (const name of ['api', 'worker', 'api-failover', 'worker-failover']) {
      const service = compose.services[name]!;
      expect(new URL(service.environment!.DATABASE_URL!.replace(/\$\{[^}]*\}/g, 'x')).host).toBe(
        'postgres:5432',
      );
      expect(service.depends_on?.postgres?.condition).toBe('service_healthy');
    }
  });

  it('failover: data nodes with AOF everysec, noeviction and min-replicas-to-write; the replica follows the primary', () => {
    for (const name of ['redis-primary', 'redis-replica']) {
      const script = argv(compose.services[name]?.command).join(' ');
      expect(script).toContain('redis-server /data/redis.conf');
      for (const line of [
        'appendonly yes',
        'appendfsync everysec',
        'maxmemory-policy noeviction',
        'min-replicas-to-write 1',
        'replica-serve-stale-data no',
      ])
        expect(script, `${name}: ${line}`).toContain(`'${line}'`);
    }
    expect(argv(compose.services['redis-replica']?.command).join(' ')).toContain(
      `'replicaof redis-primary 6379'`,
    );
  });

  it('failover: three sentinels with a quorum of 2 watch the primary', () => {
    for (const name of ['sentinel-1', 'sentinel-2', 'sentinel-3']) {
      const script = argv(compose.services[name]?.command).join(' ');
      expect(script).toContain(`'sentinel monitor recast redis-primary 6379 2'`);
      expect(script).toContain('--sentinel');
    }
  });

  it('failover: the API and the worker find the primary through all three sentinels and wait for a replica', () => {
    for (const name of ['api-failover', 'worker-failover']) {
      const env = compose.services[name]!.environment!;
      expect(env.REDIS_SENTINELS!.split(',').sort()).toEqual([
        'sentinel-1:26379',
        'sentinel-2:26379',
        'sentinel-3:26379',
      ]);
      expect(env.REDIS_SENTINEL_NAME).toBe('recast');
      expect(env.REDIS_WAIT_REPLICAS).toBe('1');
      // The same image and entry as the default service, and none of the single Redis.
      expect(compose.services[name]!.command).toEqual(
        compose.services[name.replace('-failover', '')]!.command,
      );
      expect(Object.keys(compose.services[name]!.depends_on ?? {})).not.toContain('redis');
    }
  });

  it('runs Redis with AOF on and noeviction', () => {
    const args = argv(compose.services.redis?.command);
    expect(args[0]).toBe('redis-server');
    expect(args[args.indexOf('--appendonly') + 1]).toBe('yes');
    expect(args[args.indexOf('--maxmemory-policy') + 1]).toBe('noeviction');
  });

  for (const name of ['api', 'worker', 'emulator', 'api-failover', 'worker-failover']) {
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
      const app = name.replace('-failover', '');
      expect(text).toContain(`COPY apps/${app} apps/${app}`);
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
