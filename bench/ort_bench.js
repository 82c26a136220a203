#!/usr/bin/env node
// Time one ONNX model under ONNX Runtime (CPU) the way imgclass is timed:
// fixed intra-op threads, one inter-op thread, sequential execution.
//
//   node ort_bench.js MODEL.onnx [--batch N] [--threads T] [--runs R]
//        [--warmup W] [--input X.npy] [--expected Y.npy] [--shape C,H,W]
//        [--format json|kv] [--profile-nodes]
//
// Prints one JSON object: {load_ms, median_ms, p90_ms, mean_ms, min_ms,
// images_per_s, ...}. images_per_s = batch * 1000 / median_ms.
// --format kv prints `key: value` lines instead, like `imgclass bench`.
// With --expected, also compares the first run's output with the .npy
// (max_abs_diff, top1_agree) so exported models can be checked.
// --profile-nodes prints instead, from ORT's own profiler, one line per
// node it ran in execution order: index, operator, median ms per run,
// output shape, name (as `imgclass bench --profile-nodes` does; set side by
// side by bench/compare_nodes.sh).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require('onnxruntime-node');

function usage(msg) {
  if (msg) process.stderr.write(`ort_bench: ${msg}\n`);
  process.stderr.write('usage: ort_bench.js MODEL.onnx [--batch N] [--threads T] ' +
    '[--runs R] [--warmup W] [--input X.npy] [--expected Y.npy] [--shape C,H,W] ' +
    '[--format json|kv] [--profile-nodes]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { model: null, batch: 1, threads: 2, runs: 20, warmup: 3,
              input: null, expected: null, shape: null, format: 'json',
              profileNodes: false };
  const ints = { '--batch': 'batch', '--threads': 'threads', '--runs': 'runs',
                 '--warmup': 'warmup' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '-h' || k === '--help') usage();
    if (k in ints) {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < (k === '--warmup' ? 0 : 1)) usage(`bad ${k}`);
      a[ints[k]] = v;
    } else if (k === '--input') a.input = argv[++i];
    else if (k === '--expected') a.expected = argv[++i];
    else if (k === '--profile-nodes') a.profileNodes = true;
    else if (k === '--format') {
      a.format = argv[++i];
      if (a.format !== 'json' && a.format !== 'kv') usage('bad --format');
    }
    else if (k === '--shape') {
      a.shape = String(argv[++i]).split(',').map(Number);
      if (a.shape.length < 1 || a.shape.some((d) => !Number.isInteger(d) || d < 1)) usage('bad --shape');
    } else if (k.startsWith('--')) usage(`unknown option ${k}`);
    else if (a.model === null) a.model = k;
    else usage(`unexpected argument ${k}`);
  }
  if (!a.model) usage('no model given');
  return a;
}

// Minimal .npy reader: little-endian float32, C order, versions 1-3.
function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw new Error(`${path}: not a .npy file`);
  }
  const major = buf.readUInt8(6);
  let hlen, off;
  if (major === 1) { hlen = buf.readUInt16LE(8); off = 10; }
  else if (major === 2 || major === 3) { hlen = buf.readUInt32LE(8); off = 12; }
  else throw new Error(`${path}: unsupported .npy version ${major}`);
  if (off + hlen > buf.length) throw new Error(`${path}: truncated header`);
  const header = buf.toString('latin1', off, off + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeM) throw new Error(`${path}: bad header ${header}`);
  if (descr[1] !== '<f4') throw new Error(`${path}: dtype ${descr[1]}, need <f4`);
  if (fortran[1] !== 'False') throw new Error(`${path}: Fortran order not supported`);
  const shape = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const n = shape.reduce((x, y) => x * y, 1);
  const data = off + hlen;
  if (buf.length - data !== n * 4) {
    throw new Error(`${path}: ${buf.length - data} data bytes, shape needs ${n * 4}`);
  }
  // Copy into an aligned buffer: the data offset need not be 4-aligned.
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(buf.subarray(data, data + n * 4));
  return { shape, data: out };
}

// Deterministic standard-normal-ish input (Box-Muller on a 32-bit LCG).
function randomInput(n) {
  const out = new Float32Array(n);
  let s = 12345;
  const next = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 1) / 4294967297; };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())), t = 2 * Math.PI * next();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

// Image shape (without batch) from --shape, the input file or the model.
function imageShape(args, session, npy) {
  if (args.shape) return args.shape;
  if (npy) return npy.shape.slice(1);
  const md = session.inputMetadata && session.inputMetadata[0];
  if (md && Array.isArray(md.shape) && md.shape.length > 1 &&
      md.shape.slice(1).every((d) => typeof d === 'number' && d > 0)) {
    return md.shape.slice(1);
  }
  return [3, 224, 224];
}

function percentile(sorted, p) {
  // Nearest-rank percentile.
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i];
}

function argmax(a, off, n) {
  let best = off;
  for (let i = off + 1; i < off + n; i++) if (a[i] > a[best]) best = i;
  return best - off;
}

// Per node of ORT's profile (the JSON its profiler wrote in dir): the
// median over the timed runs (the first `warmup` calls of each node left
// out), in execution order.
function printNodes(dir, warmup) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  if (files.length !== 1) throw new Error(`ORT wrote ${files.length} profiles in ${dir}`);
  const events = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
  const nodes = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    if (!nodes.has(name)) {
      const shape = e.args && e.args.output_type_shape && e.args.output_type_shape[0];
      nodes.set(name, { op: e.args ? e.args.op_name : '?', shape: shape ? Object.values(shape)[0] : [], us: [] });
    }
    nodes.get(name).us.push(e.dur);
  }
  let i = 0, total = 0;
  process.stdout.write(`${'node'.padStart(5)} ${'operator'.padEnd(24)} ${'ms/run'.padStart(10)}  output  name\n`);
  for (const [name, n] of nodes) {
    const t = n.us.slice(warmup).sort((x, y) => x - y);
    const ms = t.length ? t[(t.length - 1) >> 1] / 1000 : 0;
    total += ms;
    process.stdout.write(`${String(i++).padStart(5)} ${n.op.padEnd(24)} ${ms.toFixed(3).padStart(10)}  ` +
                         `[${n.shape.join(',')}]  ${name}\n`);
  }
  process.stdout.write(`total ${total.toFixed(3)} ms over ${nodes.size} nodes\n`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const npy = args.input ? readNpy(args.input) : null;
  if (npy && npy.shape.length < 2) throw new Error(`${args.input}: need a batch dimension`);

  const t0 = process.hrtime.bigint();
  const profDir = args.profileNodes ? fs.mkdtempSync(path.join(os.tmpdir(), 'ort_prof_')) : null;
  const session = await ort.InferenceSession.create(args.model, {
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    executionProviders: ['cpu'],
    ...(profDir ? { enableProfiling: true, profileFilePrefix: path.join(profDir, 'p') } : {}),
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

  const img = imageShape(args, session, npy);
  const per = img.reduce((x, y) => x * y, 1);
  const data = new Float32Array(args.batch * per);
  if (npy) {
    // Cycle through the file's images to fill any batch size.
    const have = npy.shape[0];
    for (let b = 0; b < args.batch; b++) {
      data.set(npy.data.subarray((b % have) * per, (b % have + 1) * per), b * per);
    }
  } else {
    data.set(randomInput(data.length));
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [args.batch, ...img]) };
  const outName = session.outputNames[0];

  const result = { model: args.model, batch: args.batch, threads: args.threads,
                   runs: args.runs, load_ms: +loadMs.toFixed(3) };

  let first = null;
  for (let i = 0; i < args.warmup; i++) {
    const out = await session.run(feeds);
    if (first === null) first = out[outName];
  }
  const times = [];
  for (let i = 0; i < args.runs; i++) {
    const s = process.hrtime.bigint();
    const out = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
    if (first === null) first = out[outName];
  }
  if (profDir) {
    session.endProfiling();
    printNodes(profDir, args.warmup);
    fs.rmSync(profDir, { recursive: true, force: true });
    return;
  }
  times.sort((x, y) => x - y);
  const median = times.length % 2 ? times[(times.length - 1) / 2]
    : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  result.median_ms = +median.toFixed(3);
  result.p90_ms = +percentile(times, 0.9).toFixed(3);
  result.mean_ms = +(times.reduce((x, y) => x + y, 0) / times.length).toFixed(3);
  result.min_ms = +times[0].toFixed(3);
  result.images_per_s = +(args.batch * 1000 / median).toFixed(2);

  if (args.expected) {
    const exp = readNpy(args.expected);
    const got = first.data;
    const cls = got.length / args.batch;
    const n = Math.min(args.batch, exp.shape[0]) * cls;
    if (exp.data.length / exp.shape[0] !== cls) {
      throw new Error(`${args.expected}: ${exp.data.length / exp.shape[0]} classes, model gives ${cls}`);
    }
    let maxAbs = 0, maxRef = 0, agree = 0;
    for (let i = 0; i < n; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(got[i] - exp.data[i]));
      maxRef = Math.max(maxRef, Math.abs(exp.data[i]));
    }
    for (let b = 0; b < n / cls; b++) {
      if (argmax(got, b * cls, cls) === argmax(exp.data, b * cls, cls)) agree++;
    }
    result.max_abs_diff = maxAbs;
    result.max_rel_diff = maxRef > 0 ? maxAbs / maxRef : maxAbs;
    result.top1_agree = `${agree}/${n / cls}`;
  }
  if (args.format === 'kv') {
    process.stdout.write(Object.entries(result).map(([k, v]) => `${k}: ${v}\n`).join(''));
  } else {
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`ort_bench: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
