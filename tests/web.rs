//! `redlab demo --web`: the page in a real chromium (Debian's chromium and
//! chromium-driver, over WebDriver) and the workshop's JSON API, against real
//! servers. The screenshots land in reports/ (web-desktop.png 1280x800,
//! web-phone.png 390x844, web-full.png, web-expiry.png, web-replica-down.png).

#[path = "common/web.rs"]
mod web_support;

use std::time::{Duration, Instant};

use crate::common::*;
use fantoccini::Client;
use serde_json::Value;
use web_support::*;

fn web_args(lab: &Lab, extra: &[&str]) -> Vec<String> {
    let mut a = topo_args(lab);
    a.extend(
        ["demo", "--web", "--listen", "127.0.0.1:0"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string()),
    );
    a
}

/// Run `script` (a JS expression's body returning a value) until it returns
/// something other than null/false; its value. Fails past the deadline.
async fn wait_js(c: &Client, what: &str, script: &str) -> (Value, Duration) {
    let t0 = Instant::now();
    loop {
        let v = c.execute(script, vec![]).await.expect("running a script");
        if !v.is_null() && v != Value::Bool(false) {
            return (v, t0.elapsed());
        }
        assert!(
            t0.elapsed() < DEADLINE,
            "timed out waiting until {what} (last: {v})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(c: &Client, css: &str) -> String {
    let js = format!("const e = document.querySelector({css:?}); return e ? e.textContent : null;");
    c.execute(&js, vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn ask(c: &Client, q: &str) {
    c.execute(
        "const i = document.getElementById('query-input'); i.value = arguments[0]; \
         document.getElementById('result').removeAttribute('data-outcome'); \
         document.getElementById('query-submit').click();",
        vec![Value::String(q.to_string())],
    )
    .await
    .unwrap();
}

/// The outcome shown once the lookup answered: (MISS|HIT, time text, source text).
async fn answered(c: &Client, what: &str) -> (String, String, String) {
    let (v, _) = wait_js(
        c,
        what,
        "const r = document.getElementById('result'); \
         if (r.classList.contains('error')) return 'error: ' + r.textContent; \
         return r.dataset.outcome || null;",
    )
    .await;
    let outcome = v.as_str().unwrap().to_string();
    assert!(!outcome.starts_with("error"), "{what}: {outcome}");
    (
        outcome,
        text(c, "#result-time").await,
        text(c, "#result-source").await,
    )
}

/// "512.3 ms" / "2.01 s" -> ms.
fn parse_ms(t: &str) -> f64 {
    let (n, unit) = t
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("no unit in {t:?}"));
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("not a time: {t:?}"));
    match unit {
        "ms" => n,
        "s" => n * 1000.0,
        _ => panic!("unknown unit in {t:?}"),
    }
}

/// Size the window so that the viewport (what the page sees) is `w`x`h`.
async fn set_viewport(c: &Client, w: u32, h: u32) {
    let (mut ww, mut wh) = (w, h);
    for _ in 0..4 {
        c.set_window_size(ww, wh).await.unwrap();
        let v = c
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let (iw, ih) = (v[0].as_u64().unwrap() as u32, v[1].as_u64().unwrap() as u32);
        if (iw, ih) == (w, h) {
            return;
        }
        eprintln!("window {ww}x{wh} gives a viewport of {iw}x{ih}");
        ww = (ww + w).saturating_sub(iw);
        wh = (wh + h).saturating_sub(ih);
    }
    panic!("the viewport could not be made {w}x{h}");
}

async fn screenshot(c: &Client, w: u32, h: u32, path: &str) {
    set_viewport(c, w, h).await;
    // Let the layout and the next snapshot settle in.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let png = c.screenshot().await.unwrap();
    std::fs::create_dir_all("reports").unwrap();
    std::fs::write(path, &png).unwrap();
    let img = png::Decoder::new(std::io::Cursor::new(&png))
        .read_info()
        .unwrap();
    let info = img.info();
    assert_eq!((info.width, info.height), (w, h), "{path}");
}

#[test]
fn the_page_in_a_real_browser() {
    let lab = lab(2);
    wait_sync(&lab);
    let untouched = Untouched::seed_lab(&lab);
    let long = WebServer::start(&web_args(
        &lab,
        &["--ttl", "60s", "--source-delay", "500ms"],
    ));
    let short = WebServer::start(&web_args(&lab, &["--ttl", "3s", "--source-delay", "200ms"]));
    let driver = Driver::start();
    rt().block_on(async {
        let c = browser(&driver, 1280, 800).await;
        c.goto(&long.url).await.unwrap();

        // One card per node, each with its role, all up.
        let (cards, _) = wait_js(
            &c,
            "three node cards are up",
            "const cs = [...document.querySelectorAll('#nodes .card')]; \
             if (cs.length !== 3 || cs.some(c => c.dataset.status !== 'up')) return null; \
             return cs.map(c => [c.dataset.name, c.querySelector('.f-role').textContent, \
                 c.querySelector('.addr').textContent]);",
        )
        .await;
        let want = [
            ("master", "master", lab.master.port),
            ("replica1", "replica", lab.replicas[0].port),
            ("replica2", "replica", lab.replicas[1].port),
        ];
        for (card, (name, role, port)) in cards.as_array().unwrap().iter().zip(want) {
            assert_eq!(card[0], name, "{cards}");
            assert_eq!(card[1], role, "{cards}");
            assert_eq!(card[2], format!("127.0.0.1:{port}"), "{cards}");
        }
        assert!(text(&c, "#how-repl").await.contains(&format!("127.0.0.1:{}", lab.replicas[1].port)));
        assert_eq!(text(&c, "#live").await, "live");

        // A miss waits for the slow source; the same query then hits a replica.
        ask(&c, "active users").await;
        let (outcome, time, source) = answered(&c, "the first lookup answered").await;
        assert_eq!(outcome, "MISS");
        assert!(parse_ms(&time) >= 500.0, "a miss waits for the source: {time}");
        assert!(source.contains("database"), "{source}");
        let (seen, _) = wait_js(
            &c,
            "each replica's visibility is shown",
            "const l = [...document.querySelectorAll('#result-replicas li')]; \
             return l.length ? l.map(e => e.textContent) : null;",
        )
        .await;
        let seen = seen.as_array().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        for s in seen {
            assert!(s.as_str().unwrap().contains("could read it"), "{s}");
        }
        ask(&c, "active users").await;
        let (outcome, hit_time, source) = answered(&c, "the second lookup answered").await;
        assert_eq!(outcome, "HIT");
        assert!(parse_ms(&hit_time) > 0.0, "{hit_time}");
        assert!(source.contains("from the cache on replica"), "{source}");

        // Text is shown as text, never parsed as HTML.
        let nasty = "<img src=x id=pwned onerror=\"document.title='pwned'\">";
        ask(&c, nasty).await;
        answered(&c, "the lookup of markup answered").await;
        let (escaped, _) = wait_js(
            &c,
            "the markup query is listed",
            "const a = document.querySelector('#result .answer'); \
             return a && a.textContent.includes('<img') ? [document.querySelectorAll('#pwned').length, document.title] : null;",
        )
        .await;
        assert_eq!(escaped, serde_json::json!([0, "redlab · cache-aside demo"]));
        ask(&c, "top products this week").await;
        answered(&c, "the fourth lookup answered").await;
        wait_js(&c, "the entries are listed", "return document.querySelectorAll('#entries tbody tr').length >= 3 || null;").await;

        screenshot(&c, 1280, 800, "reports/web-desktop.png").await;
        screenshot(&c, 390, 844, "reports/web-phone.png").await;
        set_viewport(&c, 1280, 800).await;
        let (height, _) = wait_js(&c, "the page has a height", "return document.documentElement.scrollHeight;").await;
        screenshot(&c, 1280, height.as_u64().unwrap().clamp(800, 4000) as u32, "reports/web-full.png").await;
        c.set_window_size(1280, 800).await.unwrap();

        // A short TTL: the entry counts down, expires on the master, and its
        // DEL reaches every replica; the page shows each step.
        c.goto(&short.url).await.unwrap();
        ask(&c, "expiring entry").await;
        let (outcome, _, _) = answered(&c, "the short-TTL lookup answered").await;
        assert_eq!(outcome, "MISS");
        let key_js = "const r = document.querySelector('#entries tbody tr'); return r ? [r.dataset.key, r.querySelector('.ttl').textContent] : null;";
        let (row, _) = wait_js(&c, "the entry is listed", key_js).await;
        let key = row[0].as_str().unwrap().to_string();
        let first: f64 = row[1].as_str().unwrap().trim_end_matches(" s").parse().unwrap_or(3.0);
        wait_js(
            &c,
            "the TTL counts down",
            &format!(
                "const r = document.querySelector('#entries tbody tr'); \
                 if (!r) return 'gone'; const t = parseFloat(r.querySelector('.ttl').textContent); \
                 return (isNaN(t) || t < {first} - 0.5) || null;"
            ),
        )
        .await;
        let (expiry, _) = wait_js(
            &c,
            "the expiry is reported for every node",
            &format!(
                "const li = [...document.querySelectorAll('#expiries > li')].find(l => l.dataset.key === {key:?}); \
                 if (!li || document.querySelector('#entries tbody tr[data-key]')) return null; \
                 return [...li.querySelectorAll('li')].map(n => [n.dataset.name, n.textContent]);"
            ),
        )
        .await;
        let expiry = expiry.as_array().unwrap();
        assert_eq!(expiry.len(), 3, "{expiry:?}");
        assert!(expiry[0][1].as_str().unwrap().contains("master (master) dropped it"), "{expiry:?}");
        for r in &expiry[1..] {
            assert!(r[1].as_str().unwrap().contains("received the DEL"), "{expiry:?}");
        }
        c.execute("document.getElementById('expiries').scrollIntoView({block: 'center'});", vec![])
            .await
            .unwrap();
        screenshot(&c, 1280, 800, "reports/web-expiry.png").await;
        // And the servers agree: gone from the master, and from each
        // replica's keyspace (not only hidden from reads).
        for port in ports(&lab) {
            let usage: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .query(&mut conn(port))
                .unwrap();
            assert_eq!(usage, None, "{key} still in the keyspace on port {port}");
        }

        // A stopped replica turns its card red, and back when it returns.
        c.goto(&long.url).await.unwrap();
        wait_js(&c, "replica2's card is up", "const c = document.querySelector('.card[data-name=replica2]'); return (c && c.dataset.status === 'up') || null;").await;
        lab.replicas[1].pause().unwrap();
        let (_, took) = wait_js(
            &c,
            "replica2's card turns red",
            "const c = document.querySelector('.card[data-name=replica2]'); \
             return (c && c.dataset.status === 'down' && c.classList.contains('down')) ? getComputedStyle(c).borderTopColor : null;",
        )
        .await;
        eprintln!("replica2 stopped: its card turned red after {took:?} (design target: under 2 s)");
        let red = text(&c, ".card[data-name=replica2] .why").await;
        assert!(red.contains("down since"), "{red}");
        let others = text(&c, ".card[data-name=replica1] .status").await;
        assert_eq!(others, "up", "a stopped replica2 must not take replica1 down");
        screenshot(&c, 1280, 800, "reports/web-replica-down.png").await;
        lab.replicas[1].resume().unwrap();
        let (_, back) = wait_js(&c, "replica2's card is up again", "const c = document.querySelector('.card[data-name=replica2]'); return (c && c.dataset.status === 'up') || null;").await;
        eprintln!("replica2 resumed: its card was green again after {back:?}");
        c.close().await.unwrap();
    });
    for s in [long, short] {
        let (code, said) = s.interrupt();
        assert_eq!(code, 130, "{said}");
        assert!(said.contains("keys were removed"), "{said}");
    }
    untouched.assert();
}

/// The workshop's API at its paths, with its fields, on a master and a
/// replica; `clear` removes only the page's entries; Ctrl-C removes the rest.
#[test]
fn the_workshop_api_answers_at_its_paths() {
    let lab = lab(1);
    wait_sync(&lab);
    let untouched = Untouched::seed_lab(&lab);
    let s = WebServer::start(&web_args(
        &lab,
        &["--ttl", "60s", "--source-delay", "300ms"],
    ));
    let addr = s.addr();
    assert!(
        s.first_lines.last().unwrap().contains("Ctrl-C"),
        "{:?}",
        s.first_lines
    );

    // The stats of every node, by name, once the first reading is in.
    let mut stats = Value::Null;
    wait_until("both nodes are read", || {
        stats = get(&addr, "/api/cache/stats").json();
        stats["master"]["connected"] == true && stats["replica1"]["connected"] == true
    });
    assert_eq!(stats["master"]["role"], "master", "{stats}");
    assert_eq!(stats["replica1"]["role"], "replica", "{stats}");
    assert!(stats["master"]["keys"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["master"]["used_memory_human"].is_string(), "{stats}");
    assert!(stats["master"]["uptime_in_seconds"].is_u64(), "{stats}");

    let miss = post_query(&addr, "active users");
    assert_eq!(miss.status, 200, "{}", miss.body);
    let miss = miss.json();
    assert_eq!(miss["source"], "database", "{miss}");
    assert_eq!(miss["cache_hit"], false);
    assert!(miss["elapsed_ms"].as_f64().unwrap() >= 300.0, "{miss}");
    assert!(miss["result"].as_str().unwrap().contains("active users"));
    assert_eq!(miss["written_to"]["name"], "master");
    assert!(miss["replicas"][0]["visible_after_ms"].is_f64(), "{miss}");
    let key = miss["key"].as_str().unwrap().to_string();
    assert!(
        key.starts_with("redlab:") && key.ends_with(":query:active users"),
        "{key}"
    );
    let hit = post_query(&addr, "active users").json();
    assert_eq!(hit["source"], "cache", "{hit}");
    assert_eq!(hit["served_by"]["name"], "replica1", "{hit}");
    assert_eq!(
        hit["timestamp"], miss["timestamp"],
        "the cached answer is the stored one"
    );

    // The key on the master has the TTL asked for.
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query(&mut conn(lab.master.port))
        .unwrap();
    assert!(pttl > 0 && pttl <= 60_000, "{pttl}");
    let keys = get(&addr, "/api/cache/keys").json();
    assert_eq!(keys["count"], 1, "{keys}");
    assert_eq!(keys["keys"][0]["key"], key.as_str());
    assert!(keys["keys"][0]["ttl"].as_i64().unwrap() > 0, "{keys}");
    assert_eq!(keys["keys"][0]["value"]["query"], "active users");

    let cleared = get(&addr, "/api/cache/clear").json();
    assert_eq!(cleared["removed"], 1, "{cleared}");
    assert_eq!(get(&addr, "/api/cache/keys").json()["count"], 0);
    let again = post_query(&addr, "active users").json();
    assert_eq!(again["source"], "database", "cleared, so a miss: {again}");

    // Bad requests: clear errors, bounded bodies, nothing written.
    let empty = post_query(&addr, "   ");
    assert_eq!(empty.status, 400);
    assert!(empty.json()["error"].as_str().unwrap().contains("empty"));
    let long = post_query(&addr, &"x".repeat(201));
    assert_eq!(long.status, 400, "{}", long.body);
    let junk = http(&addr, "POST", "/api/query", Some(b"{not json"));
    assert!((400..500).contains(&junk.status), "{}", junk.body);
    assert!(junk.json()["error"].is_string());
    // `curl -d` without -H sends form encoding: the JSON is read all the same.
    let form = web_support::http_typed(
        &addr,
        "POST",
        "/api/query",
        "application/x-www-form-urlencoded",
        br#"{"query": "active users"}"#,
    );
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(form.json()["source"], "cache");
    let big = format!("{{\"query\": \"{}\"}}", "y".repeat(20 * 1024));
    let big = http(&addr, "POST", "/api/query", Some(big.as_bytes()));
    assert_eq!(big.status, 413, "{}", big.body);
    let page = get(&addr, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("/app.js")
            && !page.body.contains("http://")
            && !page.body.contains("https://"),
        "the page loads nothing from elsewhere"
    );

    let (code, said) = s.interrupt();
    assert_eq!(code, 130, "{said}");
    assert!(said.contains("keys were removed"), "{said}");
    untouched.assert();
}

/// Binding beyond loopback is refused without --allow-remote; a port in use
/// is a clear error; both exit 2 before anything is written.
#[test]
fn listening_is_loopback_unless_asked_and_a_busy_port_is_an_error() {
    let lab = lab(0);
    let wide = redlab(
        &web_args(&lab, &[])
            .into_iter()
            .map(|a| {
                if a == "127.0.0.1:0" {
                    "0.0.0.0:0".to_string()
                } else {
                    a
                }
            })
            .collect::<Vec<_>>(),
    );
    assert_eq!(wide.code, 2, "{}", wide.stderr);
    assert!(wide.stderr.contains("--allow-remote"), "{}", wide.stderr);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let taken = format!("127.0.0.1:{port}");
    let args: Vec<String> = web_args(&lab, &[])
        .into_iter()
        .map(|a| if a == "127.0.0.1:0" { taken.clone() } else { a })
        .collect();
    let run = redlab(&args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&taken) && run.stderr.contains("--listen"),
        "{}",
        run.stderr
    );
    assert_no_redlab_keys(&ports(&lab));
}

/// A Redis Cluster: one card per node of every shard, and a query's entry
/// cached on the shard that serves it.
#[test]
fn a_cluster_is_served_too() {
    let s = WebServer::start(&[
        "--spawn".to_string(),
        "--cluster".to_string(),
        "demo".into(),
        "--web".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--source-delay".into(),
        "100ms".into(),
    ]);
    let addr = s.addr();
    let mut stats = Value::Null;
    wait_until("every cluster node is read", || {
        stats = get(&addr, "/api/cache/stats").json();
        stats
            .as_object()
            .is_some_and(|m| !m.is_empty() && m.values().all(|n| n["connected"] == true))
    });
    let names: Vec<&String> = stats.as_object().unwrap().keys().collect();
    assert!(names.iter().any(|n| n.starts_with("shard3.")), "{names:?}");
    for q in ["active users", "top products", "orders today"] {
        let miss = post_query(&addr, q).json();
        assert_eq!(miss["source"], "database", "{miss}");
        let hit = post_query(&addr, q).json();
        assert_eq!(hit["source"], "cache", "{hit}");
        let shard = hit["served_by"]["name"]
            .as_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            miss["written_to"]["name"],
            format!("{shard}.master"),
            "{miss}\n{hit}"
        );
    }
    let (code, said) = s.interrupt();
    assert_eq!(code, 130, "{said}");
    assert!(said.contains("keys were removed"), "{said}");
}

/// Through Sentinel: the master and replicas it names get a card each, and
/// a query's entry is written on that master.
#[test]
fn a_topology_found_through_sentinel_is_served() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        sentinels: 1,
        ..LabOptions::default()
    });
    let s = WebServer::start(&[
        "--sentinel".to_string(),
        url(lab.sentinels[0].port),
        "demo".into(),
        "--web".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--source-delay".into(),
        "100ms".into(),
    ]);
    let addr = s.addr();
    let mut stats = Value::Null;
    wait_until("the master and its replica are read", || {
        stats = get(&addr, "/api/cache/stats").json();
        stats["master"]["connected"] == true && stats["replica1"]["connected"] == true
    });
    assert_eq!(
        stats["master"]["address"],
        format!("127.0.0.1:{}", lab.master.port),
        "{stats}"
    );
    let miss = post_query(&addr, "via sentinel").json();
    assert_eq!(
        miss["written_to"]["address"],
        format!("127.0.0.1:{}", lab.master.port),
        "{miss}"
    );
    assert_eq!(post_query(&addr, "via sentinel").json()["source"], "cache");
    let (code, said) = s.interrupt();
    assert_eq!(code, 130, "{said}");
    assert_no_redlab_keys(&ports(&lab));
}
