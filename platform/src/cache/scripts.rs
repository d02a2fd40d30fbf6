use std::sync::LazyLock;

use super::{MemoryState, ScriptValue};

/// The in-memory twin of a Lua script: same keys, same args, same result.
pub type MemoryScript = fn(&mut MemoryState, &[String], &[String]) -> Result<ScriptValue, String>;

/// A script that runs atomically: in Redis as Lua (EVALSHA, loaded on first use), in memory as
/// its Rust twin under the store's lock.
pub struct AtomicScript {
    pub(crate) name: &'static str,
    pub(crate) redis: fred::types::scripts::Script,
    pub(crate) in_memory: MemoryScript,
}

impl AtomicScript {
    pub fn new(name: &'static str, lua: &'static str, in_memory: MemoryScript) -> Self {
        Self {
            name,
            redis: fred::types::scripts::Script::from_lua(lua),
            in_memory,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

fn arg(args: &[String], index: usize) -> Result<&str, String> {
    args.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {}", index + 1))
}

fn key(keys: &[String], index: usize) -> Result<&str, String> {
    keys.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("missing key {}", index + 1))
}

fn int_arg(args: &[String], index: usize) -> Result<i64, String> {
    arg(args, index)?
        .parse()
        .map_err(|_| format!("argument {} is not an integer", index + 1))
}

/// KEYS[1] counter; ARGV[1] increment; ARGV[2] ttl in ms applied on creation (0: none).
pub(crate) static INCR_WITH_TTL: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "incr_with_ttl",
        r#"
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if value == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"#,
        |state, keys, args| {
            let key = key(keys, 0)?;
            let by = int_arg(args, 0)?;
            let ttl_ms = int_arg(args, 1)?;
            let value = state.incr_by(key, by)?;
            if value == by && ttl_ms > 0 {
                state.pexpire(key, ttl_ms);
            }
            Ok(ScriptValue::Int(value))
        },
    )
});

/// KEYS[1] window counter; ARGV[1] limit; ARGV[2] window in ms.
/// Returns {allowed (0/1), count, ms until the window resets}.
pub(crate) static FIXED_WINDOW_RATE_LIMIT: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "fixed_window_rate_limit",
        r#"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
local allowed = 0
if count <= tonumber(ARGV[1]) then allowed = 1 end
return {allowed, count, ttl}
"#,
        |state, keys, args| {
            let key = key(keys, 0)?;
            let limit = int_arg(args, 0)?;
            let window_ms = int_arg(args, 1)?;
            let count = state.incr_by(key, 1)?;
            if count == 1 {
                state.pexpire(key, window_ms);
            }
            let ttl = match state.pttl(key) {
                Some(ttl) => ttl,
                None => {
                    state.pexpire(key, window_ms);
                    window_ms
                }
            };
            Ok(ScriptValue::Array(vec![
                ScriptValue::Int(i64::from(count <= limit)),
                ScriptValue::Int(count),
                ScriptValue::Int(ttl),
            ]))
        },
    )
});
