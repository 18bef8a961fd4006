use std::io;
use std::sync::{Arc, Condvar, Mutex};

use super::*;

/// An output that keeps what it is given, or fails every write.
#[derive(Clone, Default)]
struct Memory {
    bytes: Arc<Mutex<Vec<u8>>>,
    failing: bool,
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failing {
            return Err(io::Error::other("disk gone"));
        }
        self.bytes.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Memory {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.bytes.lock().expect("lock");
        std::str::from_utf8(&bytes)
            .expect("utf-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }
}

fn record(n: usize) -> AuditRecord {
    AuditRecord {
        schema: crate::audit::SCHEMA,
        time: "2026-12-03T10:00:00.000Z".to_owned(),
        request_id: format!("request-{n}"),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        activity_id: "9a2f3c46-1d4e-4b5f-8a7c-2b1e0d9c8f7a".to_owned(),
        client_address: "127.0.0.1:5000".into(),
        forwarded_for: None,
        user_agent: None,
        principal: None,
        method: "GET".to_owned(),
        path: "/dbs/db/colls/c/docs/1".to_owned(),
        operation: Some("read_item"),
        actions: Vec::new(),
        database: Some("db".into()),
        container: Some("c".into()),
        item_id: None,
        partition_key: None,
        decision: "allow",
        reason: "allowed",
        rule: None,
        policy_version: None,
        roles: Vec::new(),
        shadow: Vec::new(),
        status: 200,
        substatus: None,
        request_charge: None,
        bytes_in: 0,
        bytes_out: 0,
        upstream_status: Some(200),
        upstream_latency_ms: None,
        upstream_region: None,
        completed: true,
        latency_ms: 1.0,
    }
}

#[test]
fn flush_writes_every_record_queued_before_it_in_order() {
    let output = Memory::default();
    let sink = AuditSink::start(Box::new(output.clone()), MAX_PENDING_BYTES, FLUSH_TIMEOUT)
        .expect("the writer starts");
    for n in 0..1_000 {
        sink.record(&record(n));
    }
    sink.flush();
    let ids: Vec<String> = output
        .lines()
        .iter()
        .map(|line| line["request_id"].as_str().expect("a string id").to_owned())
        .collect();
    let expected: Vec<String> = (0..1_000).map(|n| format!("request-{n}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(sink.dropped(), 0);
}

#[test]
fn records_from_many_threads_arrive_whole_and_once() {
    let output = Memory::default();
    let sink = AuditSink::start(Box::new(output.clone()), MAX_PENDING_BYTES, FLUSH_TIMEOUT)
        .expect("the writer starts");
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let sink = sink.clone();
            scope.spawn(move || {
                for n in 0..500 {
                    sink.record(&record(thread * 1_000 + n));
                }
            });
        }
    });
    sink.flush();
    let mut ids: Vec<String> = output
        .lines()
        .iter()
        .map(|line| line["request_id"].as_str().expect("a string id").to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|thread| (0..500).map(move |n| format!("request-{}", thread * 1_000 + n)))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn dropping_the_last_sink_writes_what_is_queued() {
    let output = Memory::default();
    let sink = AuditSink::start(Box::new(output.clone()), MAX_PENDING_BYTES, FLUSH_TIMEOUT)
        .expect("the writer starts");
    let clone = sink.clone();
    for n in 0..10 {
        sink.record(&record(n));
    }
    drop(sink);
    clone.record(&record(10));
    drop(clone);
    assert_eq!(output.lines().len(), 11);
}

#[test]
fn a_record_that_does_not_fit_is_dropped_and_counted() {
    let output = Memory::default();
    let one = serde_json::to_vec(&record(0)).expect("serialisable").len() + 1;
    let sink =
        AuditSink::start(Box::new(output.clone()), one, FLUSH_TIMEOUT).expect("the writer starts");
    sink.record(&record(0));
    sink.flush();
    // Room for one line: the first fits; a longer one never can.
    let mut long = record(1);
    long.path.push_str("/more");
    sink.record(&long);
    sink.flush();
    assert_eq!(output.lines().len(), 1);
    assert_eq!(sink.dropped(), 1);
}

#[test]
fn a_failing_output_counts_its_records_as_dropped() {
    let output = Memory {
        failing: true,
        ..Memory::default()
    };
    let sink = AuditSink::start(Box::new(output), MAX_PENDING_BYTES, FLUSH_TIMEOUT)
        .expect("the writer starts");
    for n in 0..5 {
        sink.record(&record(n));
    }
    sink.flush();
    assert_eq!(sink.dropped(), 5);
}

#[test]
fn flush_with_nothing_queued_returns() {
    let sink = AuditSink::start(
        Box::new(Memory::default()),
        MAX_PENDING_BYTES,
        FLUSH_TIMEOUT,
    )
    .expect("the writer starts");
    sink.flush();
    assert_eq!(sink.dropped(), 0);
}

/// An output whose writes wait until the test opens the gate.
#[derive(Clone, Default)]
struct Gated {
    open: Arc<(Mutex<bool>, Condvar)>,
    inner: Memory,
}

impl Gated {
    fn open(&self) {
        *self.open.0.lock().expect("lock") = true;
        self.open.1.notify_all();
    }
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (open, gate) = &*self.open;
        drop(
            gate.wait_while(open.lock().expect("lock"), |open| !*open)
                .expect("gate"),
        );
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn in_flight(sink: &AuditSink) -> usize {
    lock(&sink.shared.state).in_flight
}

#[test]
fn a_stuck_output_bounds_what_waits_and_hangs_neither_flush_nor_shutdown() {
    let output = Gated::default();
    let one = serde_json::to_vec(&record(0)).expect("serialisable").len() + 1;
    let short = Duration::from_millis(200);
    let sink =
        AuditSink::start(Box::new(output.clone()), 3 * one, short).expect("the writer starts");
    sink.record(&record(0));
    // The writer takes the first line and waits on the gate with it.
    while in_flight(&sink) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    sink.record(&record(1));
    sink.record(&record(2));
    assert_eq!(
        sink.dropped(),
        0,
        "three lines fit: one being written, two gathering"
    );
    sink.record(&record(3));
    assert_eq!(sink.dropped(), 1, "the fourth does not");
    // A flush gives up on the stuck output instead of hanging.
    sink.flush();
    assert!(output.inner.lines().is_empty());
    output.open();
    sink.flush();
    let ids: Vec<String> = output
        .inner
        .lines()
        .iter()
        .map(|line| line["request_id"].as_str().expect("a string id").to_owned())
        .collect();
    assert_eq!(ids, ["request-0", "request-1", "request-2"]);
}

#[test]
fn dropping_the_last_sink_gives_up_on_a_stuck_output() {
    let output = Gated::default();
    let sink = AuditSink::start(
        Box::new(output.clone()),
        MAX_PENDING_BYTES,
        Duration::from_millis(200),
    )
    .expect("the writer starts");
    sink.record(&record(0));
    drop(sink);
    // Returned although nothing was written; the writer finishes once the output moves.
    assert!(output.inner.lines().is_empty());
    output.open();
}
