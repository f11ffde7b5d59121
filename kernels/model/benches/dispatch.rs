//! Times one hook's dispatch in every model mechanism, to see each one's cost per program.
//!
//! Each runs at N = 0, 1, 8 and 64 programs on the hook, calling the concrete types (no dyn).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hookbench_model::{
    AttachFlags, Body, CgroupIdMapFilter, CgroupRef, CgroupTask, CgroupTree, ChainTask, HandleLoopFilter,
    HookArrayTask, HookCtx, NoTally, Prog,
};
use std::hint::black_box;
use std::sync::Arc;

const SIZES: [u32; 4] = [0, 1, 8, 64];
const HOOKS: u32 = 4;

fn progs(body: Body, n: u32) -> Vec<Arc<Prog>> {
    (0..n).map(|_| Prog::new(body)).collect()
}

fn bench_body(c: &mut Criterion, body: Body) {
    let ctx = HookCtx { hook: 0 };
    let mut g = c.benchmark_group(format!("dispatch/{body}"));
    for n in SIZES {
        let mut chain = ChainTask::new();
        for p in progs(body, n) {
            chain.install(0, p);
        }
        g.bench_with_input(BenchmarkId::new("chain-walk", n), &n, |b, _| {
            b.iter(|| black_box(&chain).run(black_box(&ctx), &mut NoTally))
        });

        let mut lists = vec![Vec::new(); HOOKS as usize];
        lists[0] = progs(body, n);
        let table = HookArrayTask::with_lists(lists);
        g.bench_with_input(BenchmarkId::new("hook-index", n), &n, |b, _| {
            b.iter(|| black_box(&table).run(black_box(&ctx), &mut NoTally))
        });

        let mut tree = CgroupTree::new(HOOKS);
        let Ok(cg) = tree.add_cgroup(CgroupRef::ROOT) else {
            return;
        };
        if n > 0
            && tree
                .attach_batch(cg, 0, progs(body, n), AttachFlags::ALLOW_MULTI)
                .is_err()
        {
            return;
        }
        let task = CgroupTask::new(cg);
        g.bench_with_input(BenchmarkId::new("effective-array", n), &n, |b, _| {
            b.iter(|| black_box(&tree).run(black_box(&task), black_box(&ctx), &mut NoTally))
        });

        let mut hl = HandleLoopFilter::new(HOOKS);
        for p in progs(body, n) {
            if hl.append(0, p, Arc::from(vec![cg])).is_err() {
                return;
            }
        }
        g.bench_with_input(BenchmarkId::new("handle-loop", n), &n, |b, _| {
            b.iter(|| black_box(&hl).run(black_box(&tree), black_box(&task), black_box(&ctx), &mut NoTally))
        });

        let mut map = CgroupIdMapFilter::new(HOOKS, 1);
        if n > 0 && map.set_policy(0, cg.id(), progs(body, n).into_boxed_slice()).is_err() {
            return;
        }
        g.bench_with_input(BenchmarkId::new("cgroup-id-map", n), &n, |b, _| {
            b.iter(|| black_box(&map).run(black_box(&task), black_box(&ctx), &mut NoTally))
        });
    }
    g.finish();
}

fn dispatch(c: &mut Criterion) {
    bench_body(c, Body::Null);
    bench_body(c, Body::Counter);
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
