// The operations of the JS sample app (see app.mjs), one function per op. Each returns
// { status, count } on success and throws the SDK's error otherwise.

export const OPS = [
  'create', 'read', 'query_pk', 'query_cross', 'upsert', 'replace', 'patch',
  'read_all', 'change_feed', 'bulk', 'delete',
];

function doc(id, tenant, extra) {
  return { id, tenant, sdk: 'js', ...extra };
}

function opTable({ cosmos, container, id, tenant }) {
  const item = () => container.item(id, tenant);
  return {
    create: async () => ({ status: (await container.items.create(doc(id, tenant, { step: 'create' }))).statusCode }),
    read: async () => ({ status: (await item().read()).statusCode }),
    query_pk: async () => {
      // The rig's server ignores the partition key header of a query unless the query text
      // filters on the key, so the filter is spelled out.
      const spec = {
        query: 'SELECT * FROM c WHERE c.id = @id AND c.tenant = @tenant',
        parameters: [{ name: '@id', value: id }, { name: '@tenant', value: tenant }],
      };
      const { resources } = await container.items.query(spec, { partitionKey: tenant }).fetchAll();
      return { status: 200, count: resources.length };
    },
    query_cross: async () => {
      const { resources } = await container.items.query('SELECT c.id, c.tenant FROM c').fetchAll();
      return { status: 200, count: resources.length };
    },
    upsert: async () => ({ status: (await container.items.upsert(doc(id, tenant, { step: 'upsert' }))).statusCode }),
    replace: async () => ({ status: (await item().replace(doc(id, tenant, { step: 'replace' }))).statusCode }),
    patch: async () => {
      const res = await item().patch([{ op: 'set', path: '/patched', value: true }]);
      return { status: res.statusCode };
    },
    read_all: async () => {
      const { resources } = await container.items.readAll().fetchAll();
      return { status: 200, count: resources.length };
    },
    change_feed: async () => {
      const iterator = container.items.getChangeFeedIterator({
        changeFeedStartFrom: cosmos.ChangeFeedStartFrom.Beginning(),
      });
      const page = await iterator.readNext();
      return { status: page.statusCode, count: page.result?.length ?? 0 };
    },
    bulk: async () => {
      const ops = [1, 2].map((n) => ({
        operationType: cosmos.BulkOperationType.Create,
        partitionKey: tenant,
        resourceBody: doc(`${id}-bulk-${n}`, tenant, { step: 'bulk' }),
      }));
      const results = await container.items.executeBulkOperations(ops);
      return bulkOutcome(results);
    },
    delete: async () => ({ status: (await item().delete()).statusCode }),
  };
}

// A bulk call succeeds only if every operation did; the first failure is reported.
function bulkOutcome(results) {
  for (const r of results) {
    if (r.error) throw r.error;
    const status = r.response?.statusCode;
    if (typeof status !== 'number' || status >= 400) {
      const err = new Error(`bulk operation answered ${status}`);
      err.code = status;
      throw err;
    }
  }
  return { status: results[0]?.response?.statusCode ?? null, count: results.length };
}

function errorLine(err) {
  const status = typeof err?.code === 'number' ? err.code : (typeof err?.statusCode === 'number' ? err.statusCode : null);
  let code = err?.body?.code ?? null;
  if (code === null && typeof err?.code === 'string') code = err.code;
  if (code === null && typeof err?.cause?.code === 'string') code = err.cause.code;
  const message = String(err?.message ?? err).slice(0, 200) || null;
  return { ok: false, status, code: code === null ? null : String(code), message, count: null };
}

function emit(op, outcome) {
  process.stdout.write(`${JSON.stringify({ sdk: 'js', op, ...outcome })}\n`);
}

export async function runOps(ctx) {
  const table = opTable(ctx);
  for (const op of ctx.ops) {
    try {
      const { status, count } = await table[op]();
      emit(op, { ok: true, status: status ?? null, code: null, message: null, count: count ?? null });
    } catch (err) {
      console.error(`app: ${op} failed:`, err?.message ?? err);
      emit(op, errorLine(err));
    }
  }
}
