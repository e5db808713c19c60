//! Tokio peer of bench/bench_core.cpp, bench/bench_combinators.cpp and
//! bench/bench_locks.cpp: the same workloads on Tokio's `current_thread`
//! runtime, one JSON line per workload (the shape bench/python/common.py
//! prints): {"bench": ..., "impl": "tokio", "ns_per_op": <median>, "runs": [...]}.
//!
//! Usage: tokio_core [--reps N] [--quick] [--filter S] [--local]
//!
//! Tasks are spawned with `tokio::spawn` on a `current_thread` runtime (the
//! usual Tokio idiom, `#[tokio::main(flavor = "current_thread")]`); the
//! benchmark body is itself a spawned task, as asyncio.run's coroutine runs
//! in a Task (see block()). `--local` runs every workload inside a `LocalSet`
//! with `spawn_local` instead (Tokio's `!Send` single-threaded model; its
//! wake-ups go through the LocalSet's own waker, and yield_now costs ~4x
//! more there); the output then carries `"spawner": "spawn_local"`.
//! yield_now (sleep0, wait_for_*) defers its wake-up to the runtime's next
//! park, an epoll_wait(0) when nothing else is ready: like asyncio's
//! iteration, which polls the selector each time. Because `tokio::spawn`
//! needs `Send` futures, state shared between tasks is `Arc` + atomics /
//! `std::sync::Mutex` (the Tokio idiom; uncontended, a few ns) where ours
//! passes plain pointers.
//! CPU time is the thread's (CLOCK_THREAD_CPUTIME_ID, as bench_common.hpp):
//! the runtime runs on this one thread.
//!
//! Mirrored: create_task_await, pingpong_future (oneshot channels: each
//! round creates two and sends on both, as ours creates and sets two
//! futures), pingpong_event (Notify::notify_one stores a permit like
//! Event.set, consumed by the wake like clear()), sleep0 (yield_now),
//! timers_100k (one task per timer sleeping until its deadline: Tokio has no
//! callback timers, so this figure includes a task spawn per timer; a
//! Sleep is armed at its first poll, so only the deadlines after all are
//! armed, ~5% of them, can be checked for firing order),
//! memory_event_100k (tasks parked on one Notify; heap bytes by mallinfo2 on a
//! fresh thread, the run queue grown first, as ours), task_create_await_100k,
//! gather_100k (JoinHandles awaited in order into a result Vec, what
//! join_all over JoinHandles does), as_completed_100k (JoinSet::join_next:
//! completion order), wait_for_direct / wait_for_timeout
//! (tokio::time::timeout), lock_acquire_release and lock_guard (tokio Mutex:
//! the guard is its only form, so both are the same code), queue_1m (mpsc
//! bounded 100), event_wake_100k (Notify::notify_waiters).
//! Skipped: call_soon (Tokio has no callback queue; the nearest thing is a
//! task spawn, which create_task_await measures) and memory_future_100k
//! (Tokio has no future many tasks can await without the futures crate's
//! Shared, which Debian 12 does not package).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::{yield_now, JoinHandle, JoinSet, LocalSet};

// ---- spawning: tokio::spawn, or spawn_local inside a LocalSet (--local) ----

static LOCAL: AtomicBool = AtomicBool::new(false);

fn local_mode() -> bool {
    LOCAL.load(Relaxed)
}

fn spawn<F>(f: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if local_mode() {
        tokio::task::spawn_local(f)
    } else {
        tokio::spawn(f)
    }
}

fn spawn_in<T: Send + 'static, F>(set: &mut JoinSet<T>, f: F)
where
    F: Future<Output = T> + Send + 'static,
{
    if local_mode() {
        set.spawn_local(f);
    } else {
        set.spawn(f);
    }
}

/// Run `main` as a task on a fresh current_thread runtime (in a LocalSet with
/// --local), as asyncio.run() runs its coroutine in a Task. Not as the future
/// block_on() polls itself: waking that one goes through the I/O driver (an
/// eventfd write and an epoll_wait per wake-up, ~2.5 us per create_task_await
/// here), which is not the cost of a Tokio task switch.
fn block<F>(main: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build the Tokio runtime");
    let main = async move { spawn(main).await.expect("benchmark task panicked") };
    if local_mode() {
        LocalSet::new().block_on(&rt, main)
    } else {
        rt.block_on(main)
    }
}

// ---- measuring ------------------------------------------------------------

fn thread_cpu_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
}

/// Bytes handed out by malloc (arena chunks in use plus mmap'd blocks), as
/// heap_in_use() in bench_core.cpp. Rust's global allocator is glibc malloc.
fn heap_in_use() -> f64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let mi = unsafe { libc::mallinfo2() };
    (mi.uordblks + mi.hblkhd) as f64
}

/// CPU and wall time of timed sections, divided by their operation count.
#[derive(Default)]
struct Meter {
    cpu0: i64,
    wall0: Option<Instant>,
    cpu: i64,
    wall: u128,
    ops: u64,
}

impl Meter {
    fn start(&mut self) {
        self.wall0 = Some(Instant::now());
        self.cpu0 = thread_cpu_ns();
    }
    fn stop(&mut self, ops: u64) {
        self.cpu += thread_cpu_ns() - self.cpu0;
        self.wall += self.wall0.take().expect("stop without start").elapsed().as_nanos();
        self.ops += ops;
    }
    fn result(&self) -> Res {
        Res::Time {
            ns: self.cpu as f64 / self.ops as f64,
            wall_ns: self.wall as f64 / self.ops as f64,
            ops: self.ops,
        }
    }
}

enum Res {
    Time { ns: f64, wall_ns: f64, ops: u64 },
    Bytes { bytes_per_task: f64 },
}

fn fail(bench: &str, what: &str) -> ! {
    eprintln!("tokio_core: {}: {}", bench, what);
    std::process::exit(1);
}

fn ops(full: u64, quick: bool) -> u64 {
    if quick {
        full / 100
    } else {
        full
    }
}

/// Rounds per run: as ours (Google Benchmark Iterations(k)), 1 with --quick.
fn rounds(full: u64, quick: bool) -> u64 {
    if quick {
        1
    } else {
        full
    }
}

/// Yield until `counter` reaches `n` (ours: `while (done < n) co_await sleep(0)`).
async fn yield_until(counter: &AtomicUsize, n: usize) {
    while counter.load(Relaxed) < n {
        yield_now().await;
    }
}

/// `n` awaits of `step()` in one timed section; the step results must sum to n.
fn timed_loop<F, Fut>(quick: bool, name: &'static str, step: F) -> Res
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = i64> + Send,
{
    let n = ops(1_000_000, quick);
    block(async move {
        let mut m = Meter::default();
        let mut sum = 0;
        m.start();
        for _ in 0..n {
            sum += step().await;
        }
        m.stop(n);
        if sum != n as i64 {
            fail(name, "wrong results");
        }
        m.result()
    })
}

async fn trivial() -> i64 {
    1
}

// ---- create_task + await -----------------------------------------------------

fn create_task_await(quick: bool) -> Res {
    timed_loop(quick, "create_task_await", || async { spawn(trivial()).await.unwrap() })
}

// ---- two tasks ping-ponging through one-shot channels -------------------------
// A ping carries the sender of the pinger's fresh inbox; the ponger answers
// on it with the sender of its own fresh inbox. None stops the ponger.
struct Ping(Option<oneshot::Sender<Ping>>);

fn pingpong_future(quick: bool) -> Res {
    let n = ops(1_000_000, quick);
    block(async move {
        let (mut to_b, mut inbox_b) = oneshot::channel::<Ping>();
        let ponger = spawn(async move {
            let mut pongs = 0u64;
            while let Ping(Some(reply)) = inbox_b.await.unwrap() {
                let (next_b, next_inbox) = oneshot::channel::<Ping>();
                inbox_b = next_inbox;
                pongs += 1;
                let _ = reply.send(Ping(Some(next_b)));
            }
            pongs
        });
        let mut m = Meter::default();
        m.start();
        for _ in 0..n {
            let (to_a, inbox_a) = oneshot::channel::<Ping>();
            let _ = to_b.send(Ping(Some(to_a))); // switch 1: to the ponger
            to_b = inbox_a.await.unwrap().0.unwrap(); // switch 2: back here
        }
        m.stop(2 * n);
        let _ = to_b.send(Ping(None));
        if ponger.await.unwrap() != n {
            fail("pingpong_future", "ping-pong lost a switch");
        }
        m.result()
    })
}

// ---- two tasks ping-ponging through Notify (as an Event) -----------------------

fn pingpong_event(quick: bool) -> Res {
    let n = ops(1_000_000, quick);
    block(async move {
        let to_a = Arc::new(Notify::new());
        let to_b = Arc::new(Notify::new());
        let stop = Arc::new(AtomicBool::new(false));
        let ponger = {
            let (to_a, to_b, stop) = (to_a.clone(), to_b.clone(), stop.clone());
            spawn(async move {
                let mut pongs = 0u64;
                loop {
                    to_b.notified().await;
                    if stop.load(Relaxed) {
                        return pongs;
                    }
                    pongs += 1;
                    to_a.notify_one();
                }
            })
        };
        let mut m = Meter::default();
        m.start();
        for _ in 0..n {
            to_b.notify_one();
            to_a.notified().await;
        }
        m.stop(2 * n);
        stop.store(true, Relaxed);
        to_b.notify_one();
        if ponger.await.unwrap() != n {
            fail("pingpong_event", "ping-pong lost a switch");
        }
        m.result()
    })
}

// ---- sleep(0) -------------------------------------------------------------------

fn sleep0(quick: bool) -> Res {
    timed_loop(quick, "sleep0", || async {
        yield_now().await;
        1
    })
}

// ---- 100,000 timers ------------------------------------------------------------
// Same delays as ours: std::mt19937_64(12345) through libstdc++'s
// uniform_real_distribution<double>(0, 0.1). One task per timer sleeps until
// its deadline and records its index; the last one completes `done`.

struct Mt19937_64 {
    mt: [u64; 312],
    i: usize,
}

impl Mt19937_64 {
    fn new(seed: u64) -> Self {
        let mut mt = [0u64; 312];
        mt[0] = seed;
        for i in 1..312 {
            mt[i] = 6364136223846793005u64.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 62)).wrapping_add(i as u64);
        }
        Mt19937_64 { mt, i: 312 }
    }
    fn next(&mut self) -> u64 {
        const UPPER: u64 = 0xFFFF_FFFF_8000_0000;
        const LOWER: u64 = 0x7FFF_FFFF;
        if self.i >= 312 {
            for k in 0..312 {
                let x = (self.mt[k] & UPPER) | (self.mt[(k + 1) % 312] & LOWER);
                let mut xa = x >> 1;
                if x & 1 != 0 {
                    xa ^= 0xB502_6F5A_A966_19E9;
                }
                self.mt[k] = self.mt[(k + 156) % 312] ^ xa;
            }
            self.i = 0;
        }
        let mut y = self.mt[self.i];
        self.i += 1;
        y ^= (y >> 29) & 0x5555_5555_5555_5555;
        y ^= (y << 17) & 0x71D6_7FFF_EDA6_0000;
        y ^= (y << 37) & 0xFFF7_EEE0_0000_0000;
        y ^= y >> 43;
        y
    }
    /// libstdc++'s generate_canonical<double, 53> on a 64-bit engine, scaled.
    fn uniform(&mut self, a: f64, b: f64) -> f64 {
        let mut r = self.next() as f64 / 18446744073709551616.0;
        if r >= 1.0 {
            r = 1.0 - f64::EPSILON / 2.0;
        }
        a + r * (b - a)
    }
}

struct TimerRun {
    fired: Vec<u32>,
    done: Option<oneshot::Sender<()>>,
    /// When the last task spawned was first run (tasks first run in spawn order).
    all_armed: Option<tokio::time::Instant>,
}

fn timers_100k(quick: bool) -> Res {
    let n = ops(100_000, quick) as usize;
    let mut rng = Mt19937_64::new(12345);
    let delays: Vec<Duration> = (0..n).map(|_| Duration::from_secs_f64(rng.uniform(0.0, 0.1))).collect();
    block(async move {
        let mut when = vec![tokio::time::Instant::now(); n];
        let mut m = Meter::default();
        let mut in_order = true;
        for _ in 0..rounds(5, quick) {
            let (done_tx, done_rx) = oneshot::channel();
            let run = Arc::new(Mutex::new(TimerRun { fired: Vec::with_capacity(n), done: Some(done_tx), all_armed: None }));
            m.start();
            for (i, d) in delays.iter().enumerate() {
                let deadline = tokio::time::Instant::now() + *d;
                when[i] = deadline;
                let run = run.clone();
                spawn(async move {
                    if i == n - 1 {
                        run.lock().unwrap().all_armed = Some(tokio::time::Instant::now());
                    }
                    tokio::time::sleep_until(deadline).await;
                    let mut r = run.lock().unwrap();
                    r.fired.push(i as u32);
                    if r.fired.len() == n {
                        let _ = r.done.take().unwrap().send(());
                    }
                });
            }
            done_rx.await.unwrap();
            m.stop(n as u64);
            // A Sleep registers its deadline when first polled (tasks first
            // run in spawn order, once this task waits): one polled after its
            // deadline finishes at once. Only the deadlines after every timer
            // was armed are checked, to Tokio's timer resolution (1 ms:
            // deadlines in one millisecond fire in no particular order).
            let ms = Duration::from_millis(1);
            let r = run.lock().unwrap();
            let armed = r.all_armed.unwrap() + ms;
            let late: Vec<usize> = r.fired.iter().map(|&i| i as usize).filter(|&i| when[i] > armed).collect();
            for k in 1..late.len() {
                if when[late[k]] + ms < when[late[k - 1]] {
                    in_order = false;
                }
            }
        }
        if !in_order {
            fail("timers_100k", "timers fired out of deadline order");
        }
        m.result()
    })
}

// ---- memory of 100,000 tasks parked on one Notify -------------------------------

/// A task waiting on `gate`: counted in `parked` by the poll that registers
/// its wait (so `parked == n` means all n wait), in `done` once woken.
fn spawn_waiter(gate: &Arc<Notify>, parked: &Arc<AtomicUsize>, done: &Arc<AtomicUsize>) -> JoinHandle<()> {
    let (gate, parked, done) = (gate.clone(), parked.clone(), done.clone());
    spawn(async move {
        let wait = gate.notified();
        parked.fetch_add(1, Relaxed);
        wait.await;
        done.fetch_add(1, Relaxed);
    })
}

fn memory_event_once(n: usize) -> f64 {
    block(async move {
        // Grow the run queue first (ours grows the ready queue), so its buffer
        // is not counted: 2n tasks queued at once, then finished.
        let warm: Vec<_> = (0..2 * n).map(|_| spawn(trivial())).collect();
        for h in warm {
            h.await.unwrap();
        }

        let gate = Arc::new(Notify::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let heap0 = heap_in_use();
        for _ in 0..n {
            spawn_waiter(&gate, &parked, &done); // detached, as ours
        }
        yield_until(&parked, n).await; // every task runs up to its wait
        let heap1 = heap_in_use();
        if done.load(Relaxed) != 0 {
            fail("memory_event_100k", "a waiter finished before the gate opened");
        }
        gate.notify_waiters();
        yield_until(&done, n).await;
        (heap1 - heap0) / n as f64
    })
}

fn memory_event_100k(quick: bool) -> Res {
    let n = ops(100_000, quick) as usize;
    let k = rounds(3, quick);
    let mut total = 0.0;
    for _ in 0..k {
        // A fresh thread, as ours: its malloc arena starts empty.
        total += std::thread::spawn(move || memory_event_once(n)).join().unwrap();
    }
    Res::Bytes { bytes_per_task: total / k as f64 }
}

// ---- 100k tasks: created, then consumed one way or another ----------------------

fn per_task<C, Fut>(quick: bool, name: &'static str, consume: C) -> Res
where
    C: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = i64> + Send,
{
    let n = ops(100_000, quick);
    block(async move {
        let mut m = Meter::default();
        let mut sum = 0i64;
        for _ in 0..rounds(10, quick) {
            m.start();
            sum += consume(n).await;
            m.stop(n);
        }
        if sum != m.ops as i64 {
            fail(name, "wrong task results");
        }
        m.result()
    })
}

fn make_tasks(n: u64) -> Vec<JoinHandle<i64>> {
    (0..n).map(|_| spawn(trivial())).collect()
}

fn task_create_await_100k(quick: bool) -> Res {
    per_task(quick, "task_create_await_100k", |n| async move {
        let mut sum = 0;
        for h in make_tasks(n) {
            sum += h.await.unwrap();
        }
        sum
    })
}

fn gather_100k(quick: bool) -> Res {
    per_task(quick, "gather_100k", |n| async move {
        let tasks = make_tasks(n);
        let mut results = Vec::with_capacity(tasks.len());
        for h in tasks {
            results.push(h.await.unwrap());
        }
        results.iter().sum()
    })
}

fn as_completed_100k(quick: bool) -> Res {
    per_task(quick, "as_completed_100k", |n| async move {
        let mut set = JoinSet::new();
        for _ in 0..n {
            spawn_in(&mut set, trivial());
        }
        let mut sum = 0;
        while let Some(r) = set.join_next().await {
            sum += r.unwrap();
        }
        sum
    })
}

// ---- wait_for with a timeout that never fires, vs awaiting directly --------------

async fn yield_once() -> i64 {
    yield_now().await;
    1
}

fn wait_for_direct(quick: bool) -> Res {
    timed_loop(quick, "wait_for_direct", yield_once)
}

fn wait_for_timeout(quick: bool) -> Res {
    timed_loop(quick, "wait_for_timeout", || async {
        tokio::time::timeout(Duration::from_secs(10), yield_once()).await.unwrap()
    })
}

// ---- uncontended Mutex --------------------------------------------------------------

fn lock_acquire_release(quick: bool) -> Res {
    // 'static, so that each step's future can borrow it (a few bytes leaked per run).
    let lock: &'static tokio::sync::Mutex<()> = Box::leak(Box::new(tokio::sync::Mutex::new(())));
    let res = timed_loop(quick, "lock_acquire_release", move || async move {
        let guard = lock.lock().await;
        drop(guard);
        1
    });
    if lock.try_lock().is_err() {
        fail("lock_acquire_release", "lock still held");
    }
    res
}

// ---- bounded mpsc channel (100): one producer task, the main body consumes ------------

fn queue_1m(quick: bool) -> Res {
    let n = ops(1_000_000, quick);
    block(async move {
        let mut m = Meter::default();
        let mut ok = true;
        for _ in 0..rounds(3, quick) {
            m.start();
            let (tx, mut rx) = mpsc::channel::<u64>(100);
            let prod = spawn(async move {
                for i in 0..n {
                    tx.send(i).await.unwrap();
                }
            });
            for i in 0..n {
                if rx.recv().await != Some(i) {
                    ok = false;
                }
            }
            prod.await.unwrap();
            m.stop(n);
        }
        if !ok {
            fail("queue_1m", "queue items out of order");
        }
        m.result()
    })
}

// ---- Notify::notify_waiters() waking 100k waiters -------------------------------------
// Timed: notify_waiters() plus every waiter resuming and finishing.

fn event_wake_100k(quick: bool) -> Res {
    let n = ops(100_000, quick) as usize;
    block(async move {
        let mut m = Meter::default();
        let mut ok = true;
        for _ in 0..rounds(10, quick) {
            let ev = Arc::new(Notify::new());
            let parked = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicUsize::new(0));
            let waiters: Vec<_> = (0..n).map(|_| spawn_waiter(&ev, &parked, &done)).collect();
            yield_until(&parked, n).await;
            if done.load(Relaxed) != 0 {
                ok = false;
            }

            m.start();
            ev.notify_waiters();
            yield_until(&done, n).await;
            m.stop(n as u64);

            if !waiters.iter().all(|w| w.is_finished()) {
                ok = false;
            }
        }
        if !ok {
            fail("event_wake_100k", "waiters woke wrongly");
        }
        m.result()
    })
}

// ---- driver ---------------------------------------------------------------------------

const WORKLOADS: &[(&str, fn(bool) -> Res)] = &[
    ("create_task_await", create_task_await),
    ("pingpong_future", pingpong_future),
    ("pingpong_event", pingpong_event),
    ("sleep0", sleep0),
    ("timers_100k", timers_100k),
    ("memory_event_100k", memory_event_100k),
    ("task_create_await_100k", task_create_await_100k),
    ("gather_100k", gather_100k),
    ("as_completed_100k", as_completed_100k),
    ("wait_for_direct", wait_for_direct),
    ("wait_for_timeout", wait_for_timeout),
    ("lock_acquire_release", lock_acquire_release),
    ("lock_guard", lock_acquire_release),
    ("queue_1m", queue_1m),
    ("event_wake_100k", event_wake_100k),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let k = v.len();
    if k % 2 == 1 {
        v[k / 2]
    } else {
        (v[k / 2 - 1] + v[k / 2]) / 2.0
    }
}

fn fmt_list(v: &[f64]) -> String {
    v.iter().map(|x| format!("{:.2}", x)).collect::<Vec<_>>().join(", ")
}

fn usage() -> ! {
    eprintln!("usage: tokio_core [--reps N] [--quick] [--filter S] [--local]");
    std::process::exit(2);
}

fn main() {
    let mut reps = 3usize;
    let mut quick = false;
    let mut filter = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()),
            "--quick" => quick = true,
            "--filter" => filter = args.next().unwrap_or_else(|| usage()),
            "--local" => LOCAL.store(true, Relaxed),
            _ => usage(),
        }
    }
    if quick {
        reps = 1;
    }
    let reps = reps.max(1);
    let version = option_env!("TOKIO_VERSION").unwrap_or("1");
    let spawner = if local_mode() { "spawn_local" } else { "spawn" };
    for (name, work) in WORKLOADS {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let runs: Vec<Res> = (0..reps).map(|_| work(quick)).collect();
        let head = format!(
            "{{\"bench\": \"{}\", \"impl\": \"tokio\", \"version\": \"{}\", \"spawner\": \"{}\"",
            name, version, spawner
        );
        match &runs[0] {
            Res::Time { ops, .. } => {
                let mut ns = Vec::new();
                let mut wall = Vec::new();
                for r in &runs {
                    if let Res::Time { ns: a, wall_ns: b, .. } = r {
                        ns.push(*a);
                        wall.push(*b);
                    }
                }
                println!(
                    "{}, \"ns_per_op\": {:.2}, \"wall_ns_per_op\": {:.2}, \"ops\": {}, \"runs\": [{}]}}",
                    head,
                    median(ns.clone()),
                    median(wall),
                    ops,
                    fmt_list(&ns)
                );
            }
            Res::Bytes { .. } => {
                let b: Vec<f64> = runs
                    .iter()
                    .map(|r| match r {
                        Res::Bytes { bytes_per_task, .. } => *bytes_per_task,
                        Res::Time { .. } => unreachable!(),
                    })
                    .collect();
                println!("{}, \"bytes_per_task\": {:.2}, \"runs\": [{}]}}", head, median(b.clone()), fmt_list(&b));
            }
        }
    }
}
