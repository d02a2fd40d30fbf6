//! The same behaviour from both cache backends: real Redis and the in-memory twin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use runmesh_platform::cache::{
    AtomicScript, Cache, CacheError, MemoryCache, RedisCache, ScriptValue, SharedCache,
};
use runmesh_platform::testkit;

async fn backends() -> Vec<(&'static str, SharedCache)> {
    let namespace = testkit::unique_name("cachetest");
    let redis = RedisCache::connect(&testkit::redis_url(), &namespace)
        .await
        .unwrap();
    // The pool connects in the background.
    for _ in 0..100 {
        if redis.ping().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis
        .ping()
        .await
        .expect("Redis at RUNMESH_TEST_REDIS_URL answers");
    vec![
        ("redis", Arc::new(redis)),
        ("memory", Arc::new(MemoryCache::new(&namespace))),
    ]
}

#[tokio::test]
async fn keys_with_ttl_expire_and_set_if_absent_sets_once() {
    for (backend, cache) in backends().await {
        assert_eq!(cache.get("missing").await.unwrap(), None, "{backend}");
        cache.set("k", b"v1", None).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), Some(b"v1".to_vec()));
        assert!(!cache.set_if_absent("k", b"v2", None).await.unwrap());
        assert_eq!(cache.get("k").await.unwrap(), Some(b"v1".to_vec()));
        assert!(cache.delete("k").await.unwrap());
        assert!(!cache.delete("k").await.unwrap(), "{backend}");

        assert!(
            cache
                .set_if_absent("short", b"x", Some(Duration::from_millis(100)))
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            cache.get("short").await.unwrap(),
            None,
            "{backend}: expired"
        );
        assert!(cache.set_if_absent("short", b"y", None).await.unwrap());
    }
}

#[tokio::test]
async fn concurrent_increments_are_all_counted() {
    for (backend, cache) in backends().await {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    for _ in 0..20 {
                        cache
                            .incr("counter", 1, Some(Duration::from_secs(60)))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            cache.incr("counter", 0, None).await.unwrap(),
            1000,
            "{backend}"
        );
        assert_eq!(
            cache.incr("counter", -10, None).await.unwrap(),
            990,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn sorted_sets_rank_from_the_top() {
    for (backend, cache) in backends().await {
        cache.zset("board", "ana", 42.0).await.unwrap();
        cache.zset("board", "bo", 10.0).await.unwrap();
        cache.zset("board", "cy", 99.5).await.unwrap();
        assert_eq!(cache.zincr("board", "bo", 50.0).await.unwrap(), 60.0);
        assert_eq!(
            cache.ztop("board", 0, 10).await.unwrap(),
            vec![
                ("cy".to_string(), 99.5),
                ("bo".to_string(), 60.0),
                ("ana".to_string(), 42.0)
            ],
            "{backend}"
        );
        assert_eq!(
            cache.ztop("board", 1, 1).await.unwrap(),
            vec![("bo".to_string(), 60.0)],
            "{backend}"
        );
        assert_eq!(cache.zrank_desc("board", "ana").await.unwrap(), Some(2));
        assert_eq!(cache.zrank_desc("board", "nobody").await.unwrap(), None);
        assert_eq!(cache.zscore("board", "cy").await.unwrap(), Some(99.5));
        assert!(cache.ztop("empty", 0, 5).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn rate_limit_refuses_past_the_limit_until_the_window_resets() {
    for (backend, cache) in backends().await {
        // A window no stall of the test process outlasts, for what happens within one.
        let window = Duration::from_secs(30);
        for attempt in 1..=3u64 {
            let decision = cache.rate_limit("login:ana", 3, window).await.unwrap();
            assert!(decision.allowed, "{backend}: attempt {attempt}");
            assert_eq!(decision.remaining, 3 - attempt);
        }
        let refused = cache.rate_limit("login:ana", 3, window).await.unwrap();
        assert!(!refused.allowed, "{backend}");
        assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= window);
        assert!(
            cache
                .rate_limit("login:bo", 3, window)
                .await
                .unwrap()
                .allowed
        );

        // A short window, on keys of its own, for the reset.
        let short = Duration::from_millis(500);
        let mut refused_key = None;
        for round in 0..20 {
            let key = format!("login:cy:{round}");
            let started = Instant::now();
            let first = cache.rate_limit(&key, 1, short).await.unwrap();
            assert!(first.allowed, "{backend}: the first call of a window");
            let second = cache.rate_limit(&key, 1, short).await.unwrap();
            if !second.allowed {
                refused_key = Some(key);
                break;
            }
            // Allowed only if the test stalled past the window between the two calls: then
            // try again on a fresh key.
            assert!(
                started.elapsed() >= short,
                "{backend}: a second call within the window was allowed"
            );
        }
        let key = refused_key.unwrap_or_else(|| {
            panic!("{backend}: never made two calls within {short:?} in 20 rounds")
        });
        let deadline = Instant::now() + short + Duration::from_secs(10);
        while !cache.rate_limit(&key, 1, short).await.unwrap().allowed {
            assert!(
                Instant::now() < deadline,
                "{backend}: the window never reset"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A capacity gate like the race service's: admit each member once, at most ARGV[1] in all.
static RESERVE_SLOT: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "reserve_slot",
        r#"
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then return {'DUPLICATE', redis.call('SCARD', KEYS[1])} end
local taken = redis.call('SCARD', KEYS[1])
if taken >= tonumber(ARGV[1]) then return {'FULL', taken} end
redis.call('SADD', KEYS[1], ARGV[2])
return {'OK', taken + 1}
"#,
        |state, keys, args| {
            let members = &keys[0];
            let capacity: usize = args[0].parse().map_err(|_| "capacity")?;
            let runner = &args[1];
            let taken = state.scard(members)?;
            let outcome = if state.sismember(members, runner)? {
                "DUPLICATE"
            } else if taken >= capacity {
                "FULL"
            } else {
                state.sadd(members, runner)?;
                "OK"
            };
            Ok(ScriptValue::Array(vec![
                ScriptValue::Text(outcome.to_string()),
                ScriptValue::Int(state.scard(members)? as i64),
            ]))
        },
    )
});

#[tokio::test]
async fn atomic_scripts_admit_exactly_capacity_under_contention() {
    for (backend, cache) in backends().await {
        let tasks: Vec<_> = (0..400)
            .map(|i| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let runner = format!("runner-{}", i % 250);
                    let reply = cache
                        .run_script(&RESERVE_SLOT, &["race:1:members"], &["100".into(), runner])
                        .await
                        .unwrap();
                    match reply.as_array().unwrap()[0].clone() {
                        ScriptValue::Text(outcome) => outcome,
                        other => panic!("{other:?}"),
                    }
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            if task.await.unwrap() == "OK" {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 100, "{backend}");
    }
}

static BROKEN: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "broken",
        "return redis.call('INCR', KEYS[1], 'extra', 'args')",
        |_, _, _| Err("ERR wrong number of arguments for 'incr' command".to_string()),
    )
});

#[tokio::test]
async fn a_failing_script_is_a_script_error_not_a_crash() {
    for (backend, cache) in backends().await {
        let error = cache.run_script(&BROKEN, &["x"], &[]).await.unwrap_err();
        assert!(
            matches!(
                error,
                CacheError::Script {
                    script: "broken",
                    ..
                }
            ),
            "{backend}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_reported_unavailable_quickly() {
    // Nothing listens on port 1 (a privileged port no test binds).
    let cache = RedisCache::connect("redis://127.0.0.1:1", "gone")
        .await
        .unwrap();
    let error = cache.get("k").await.unwrap_err();
    assert!(matches!(error, CacheError::Unavailable(_)), "{error:?}");
    let probe = runmesh_platform::cache::probe(Arc::new(cache), "redis");
    assert!(probe.check(Duration::from_secs(3)).await.is_err());
}
