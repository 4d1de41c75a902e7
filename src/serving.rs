//! Serving threads: one single-threaded tokio runtime per core, each
//! serving the client connections handed to it from accept to close.
//!
//! Why not only tokio's work-stealing runtime: a proxied request wakes
//! three tasks (client connection, upstream connection, and back), and on
//! the shared runtime those wake-ups cross threads, each a futex call and
//! often an inter-processor interrupt. Measured with bench/run.sh on 2
//! cores, that made a request cost up to 1.9x nginx's CPU. Here a
//! connection, the upstream connections it borrows (see
//! [`pool_slot`]) and their tasks stay on one thread, as nginx's workers
//! do. A single acceptor hands each new connection to the thread with the
//! fewest open ones, so one busy client does not pile connections on one
//! core (SO_REUSEPORT would hash them blindly).
//!
//! Background work (session refreshes started by a request excepted) stays
//! on the main runtime.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::watch;

thread_local! {
    /// Which serving thread this is (1-based), 0 elsewhere.
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// The serving thread this code runs on (1..=n), or 0 off them. Upstream
/// pools keep one idle list per slot, so a connection is reused by the
/// thread whose runtime drives it.
pub fn pool_slot() -> usize {
    SLOT.with(Cell::get)
}

/// One serving thread as the acceptor sees it.
struct Thread {
    handle: Handle,
    /// Connections it serves now.
    open: Arc<AtomicUsize>,
}

/// The serving threads; stopped (their runtimes dropped, tasks cancelled)
/// when this is dropped.
pub struct ServingThreads {
    threads: Vec<Thread>,
    stop: watch::Sender<bool>,
}

impl ServingThreads {
    /// Starts `count` threads (0: one per available core).
    pub fn start(count: usize) -> std::io::Result<Self> {
        let count = match count {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (stop, stopped) = watch::channel(false);
        // Events from serving threads go where the starting thread's go
        // (the global subscriber in production, a test's capture in tests).
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let mut stopped = stopped.clone();
            let dispatch = dispatch.clone();
            // Linux keeps 15 bytes of a thread's name: this one stays
            // whole in top, ps and perf (up to doorward-srv-9999).
            std::thread::Builder::new()
                .name(format!("doorward-srv-{index}"))
                .spawn(move || {
                    SLOT.with(|slot| slot.set(index + 1));
                    let _log = tracing::dispatcher::set_default(&dispatch);
                    runtime.block_on(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    });
                    // Connections still open past the drain are cut here.
                    runtime.shutdown_background();
                })?;
            threads.push(Thread {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
            });
        }
        Ok(Self { threads, stop })
    }

    /// Moves an accepted connection to the least busy serving thread and
    /// runs `serve` on it there.
    pub fn serve<F, Fut>(&self, tcp: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(thread) = self.threads.iter().min_by_key(|t| t.open.load(Ordering::Relaxed)) else {
            return;
        };
        // The socket is re-registered with the chosen thread's runtime:
        // its readiness events then wake that thread only.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(error = %e, "cannot hand a connection to a serving thread");
                return;
            }
        };
        let open = Arc::clone(&thread.open);
        open.fetch_add(1, Ordering::Relaxed);
        let counted = OpenCount(open);
        thread.handle.spawn(async move {
            let _counted = counted;
            match TcpStream::from_std(tcp) {
                Ok(tcp) => serve(tcp).await,
                Err(e) => tracing::debug!(error = %e, "cannot register a handed-over connection"),
            }
        });
    }
}

impl Drop for ServingThreads {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Decrements a thread's open count when its connection ends.
struct OpenCount(Arc<AtomicUsize>);

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio::sync::{mpsc, oneshot};

    #[tokio::test]
    async fn each_connection_runs_on_the_least_busy_serving_thread() {
        let threads = ServingThreads::start(2).expect("serving threads");
        assert_eq!(threads.threads.len(), 2);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (slots_tx, mut slots) = mpsc::unbounded_channel();
        let mut clients = Vec::new();
        let mut releases = Vec::new();
        for _ in 0..4 {
            clients.push(TcpStream::connect(addr).await.expect("connect"));
            let (tcp, _) = listener.accept().await.expect("accept");
            let (release, held) = oneshot::channel::<()>();
            releases.push(release);
            let slots_tx = slots_tx.clone();
            threads.serve(tcp, move |tcp| async move {
                let _ = slots_tx.send(pool_slot());
                let _ = held.await;
                drop(tcp);
            });
            // The next pick must see this one counted.
            assert!(
                slots.recv().await.is_some_and(|slot| slot > 0),
                "ran off the serving threads"
            );
        }
        let open: Vec<usize> = threads.threads.iter().map(|t| t.open.load(Ordering::Relaxed)).collect();
        assert_eq!(open, vec![2, 2], "connections are spread by how many each thread has");
        drop(releases);
        for _ in 0..100 {
            if threads.threads.iter().all(|t| t.open.load(Ordering::Relaxed) == 0) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("closed connections are still counted as open");
    }
}
