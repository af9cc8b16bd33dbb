//! The least client CPU a pipelined SET benchmark can spend on this machine:
//! one connection, a batch of P SETs encoded ONCE and sent again and again
//! (blocking `write`, then `read` until P `+OK` replies are in), no timing, no
//! histogram, no key generation. What it spends per million SETs is almost
//! all kernel time (loopback TCP, wake-ups); no real client can go below it.
//! `bench/compare.sh` prints it next to redlab and redis-benchmark.
//!
//! Usage: cargo run --release --example syscall_floor -- PORT REQUESTS PIPELINE
//! Prints the process's own user+sys CPU seconds per million SETs. It writes
//! keys `redlab:floor:0` .. `redlab:floor:{P-1}` and removes them at the end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [port, n, p] = [1, 2, 3].map(|i| {
        args.get(i)
            .and_then(|a| a.parse::<u64>().ok())
            .unwrap_or_else(|| {
                eprintln!("usage: syscall_floor PORT REQUESTS PIPELINE");
                std::process::exit(2)
            })
    });
    let p = p.max(1);
    let mut s = TcpStream::connect(("127.0.0.1", port as u16)).expect("connect");
    s.set_nodelay(true).expect("nodelay");

    let mut batch = Vec::new();
    for i in 0..p {
        let key = format!("redlab:floor:{i}");
        write!(
            batch,
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$3\r\nxxx\r\n",
            key.len()
        )
        .expect("encode");
    }
    let reply_bytes = 5 * p as usize; // "+OK\r\n" each
    let mut buf = vec![0u8; 128 * 1024];

    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut done = 0;
    while done < n {
        s.write_all(&batch).expect("write");
        let mut got = 0;
        while got < reply_bytes {
            let r = s.read(&mut buf).expect("read");
            assert!(r > 0, "the server closed the connection");
            assert_eq!(
                buf[0],
                b'+',
                "an error reply: {:?}",
                String::from_utf8_lossy(&buf[..r])
            );
            got += r;
        }
        done += p;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;

    let mut del = format!("*{}\r\n$6\r\nUNLINK\r\n", p + 1).into_bytes();
    for i in 0..p {
        let key = format!("redlab:floor:{i}");
        write!(del, "${}\r\n{key}\r\n", key.len()).expect("encode");
    }
    s.write_all(&del).expect("write");
    let _ = s.read(&mut buf).expect("read");

    println!(
        "requests {done} pipeline {p}: {:.0} ops/s, client CPU {:.3} s per million SETs",
        done as f64 / secs,
        cpu * 1e6 / done as f64
    );
}

/// User + system CPU seconds of this process, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), counted from 1 with the pid; the
    // split starts at field 3. In USER_HZ ticks, which Linux fixes at 100.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
