use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{AtomicScript, Cache, CacheError, ScriptValue};

const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// Expired keys are dropped lazily on access and by a sweep every this many writes.
const SWEEP_EVERY_WRITES: u64 = 4096;

#[derive(Debug, Clone, Copy)]
struct Score(f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Default)]
struct SortedSet {
    scores: HashMap<String, f64>,
    ordered: BTreeSet<(Score, String)>,
}

impl SortedSet {
    fn insert(&mut self, member: &str, score: f64) {
        if let Some(old) = self.scores.insert(member.to_string(), score) {
            self.ordered.remove(&(Score(old), member.to_string()));
        }
        self.ordered.insert((Score(score), member.to_string()));
    }

    fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(old) => {
                self.ordered.remove(&(Score(old), member.to_string()));
                true
            }
            None => false,
        }
    }

    /// Highest score first; ties by member descending, as Redis' ZREVRANGE.
    fn descending(&self) -> impl Iterator<Item = &(Score, String)> {
        self.ordered.iter().rev()
    }
}

#[derive(Debug)]
enum Value {
    Text(Vec<u8>),
    Set(HashSet<String>),
    Hash(HashMap<String, String>),
    Sorted(SortedSet),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// The data behind [`MemoryCache`], handed to the in-memory twins of [`AtomicScript`]s. Its
/// operations follow the Redis commands of the same name.
#[derive(Debug, Default)]
pub struct MemoryState {
    entries: HashMap<String, Entry>,
    writes: u64,
}

impl MemoryState {
    fn live(&mut self, key: &str) -> Option<&mut Entry> {
        let now = Instant::now();
        if self.entries.get(key).is_some_and(|e| !e.live(now)) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn wrote(&mut self) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY_WRITES) {
            let now = Instant::now();
            self.entries.retain(|_, e| e.live(now));
        }
    }

    fn entry_or(&mut self, key: &str, make: fn() -> Value) -> &mut Entry {
        self.wrote();
        let now = Instant::now();
        let entry = self
            .entries
            .entry(key.to_string())
            .or_insert_with(|| Entry {
                value: make(),
                expires_at: None,
            });
        if !entry.live(now) {
            *entry = Entry {
                value: make(),
                expires_at: None,
            };
        }
        entry
    }

    pub fn exists(&mut self, key: &str) -> bool {
        self.live(key).is_some()
    }

    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self.live(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Text(bytes)) => Ok(Some(bytes.clone())),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn set(&mut self, key: &str, value: &[u8], ttl: Option<Duration>) {
        self.wrote();
        self.entries.insert(
            key.to_string(),
            Entry {
                value: Value::Text(value.to_vec()),
                expires_at: ttl.map(|ttl| Instant::now() + ttl),
            },
        );
    }

    pub fn del(&mut self, key: &str) -> bool {
        let existed = self.live(key).is_some();
        self.entries.remove(key);
        existed
    }

    pub fn incr_by(&mut self, key: &str, by: i64) -> Result<i64, String> {
        let entry = self.entry_or(key, || Value::Text(b"0".to_vec()));
        let Value::Text(bytes) = &mut entry.value else {
            return Err(WRONG_TYPE.to_string());
        };
        let current: i64 = std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("ERR value is not an integer or out of range")?;
        let next = current
            .checked_add(by)
            .ok_or("ERR increment or decrement would overflow")?;
        *bytes = next.to_string().into_bytes();
        Ok(next)
    }

    /// Sets a time to live; `false` when the key does not exist.
    pub fn pexpire(&mut self, key: &str, ttl_ms: i64) -> bool {
        let at = Instant::now() + Duration::from_millis(ttl_ms.max(0).unsigned_abs());
        match self.live(key) {
            Some(entry) => {
                entry.expires_at = Some(at);
                true
            }
            None => false,
        }
    }

    /// Milliseconds to live; `None` when the key is missing or has no expiry.
    pub fn pttl(&mut self, key: &str) -> Option<i64> {
        let now = Instant::now();
        let at = self.live(key)?.expires_at?;
        i64::try_from(at.saturating_duration_since(now).as_millis()).ok()
    }

    pub fn sadd(&mut self, key: &str, member: &str) -> Result<bool, String> {
        match &mut self.entry_or(key, || Value::Set(HashSet::new())).value {
            Value::Set(set) => Ok(set.insert(member.to_string())),
            _ => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn srem(&mut self, key: &str, member: &str) -> Result<bool, String> {
        match self.live(key).map(|e| &mut e.value) {
            None => Ok(false),
            Some(Value::Set(set)) => Ok(set.remove(member)),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn sismember(&mut self, key: &str, member: &str) -> Result<bool, String> {
        match self.live(key).map(|e| &e.value) {
            None => Ok(false),
            Some(Value::Set(set)) => Ok(set.contains(member)),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn scard(&mut self, key: &str) -> Result<usize, String> {
        match self.live(key).map(|e| &e.value) {
            None => Ok(0),
            Some(Value::Set(set)) => Ok(set.len()),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn hget(&mut self, key: &str, field: &str) -> Result<Option<String>, String> {
        match self.live(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Hash(hash)) => Ok(hash.get(field).cloned()),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn hset(&mut self, key: &str, field: &str, value: &str) -> Result<bool, String> {
        match &mut self.entry_or(key, || Value::Hash(HashMap::new())).value {
            Value::Hash(hash) => Ok(hash.insert(field.to_string(), value.to_string()).is_none()),
            _ => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn hdel(&mut self, key: &str, field: &str) -> Result<bool, String> {
        match self.live(key).map(|e| &mut e.value) {
            None => Ok(false),
            Some(Value::Hash(hash)) => Ok(hash.remove(field).is_some()),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn zadd(&mut self, key: &str, member: &str, score: f64) -> Result<(), String> {
        match &mut self
            .entry_or(key, || Value::Sorted(SortedSet::default()))
            .value
        {
            Value::Sorted(set) => {
                set.insert(member, score);
                Ok(())
            }
            _ => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn zincrby(&mut self, key: &str, member: &str, by: f64) -> Result<f64, String> {
        match &mut self
            .entry_or(key, || Value::Sorted(SortedSet::default()))
            .value
        {
            Value::Sorted(set) => {
                let score = set.scores.get(member).copied().unwrap_or(0.0) + by;
                set.insert(member, score);
                Ok(score)
            }
            _ => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn zrem(&mut self, key: &str, member: &str) -> Result<bool, String> {
        match self.live(key).map(|e| &mut e.value) {
            None => Ok(false),
            Some(Value::Sorted(set)) => Ok(set.remove(member)),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn zscore(&mut self, key: &str, member: &str) -> Result<Option<f64>, String> {
        match self.live(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Sorted(set)) => Ok(set.scores.get(member).copied()),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn zcard(&mut self, key: &str) -> Result<usize, String> {
        match self.live(key).map(|e| &e.value) {
            None => Ok(0),
            Some(Value::Sorted(set)) => Ok(set.scores.len()),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn zrevrank(&mut self, key: &str, member: &str) -> Result<Option<u64>, String> {
        match self.live(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Sorted(set)) => Ok(set
                .descending()
                .position(|(_, m)| m == member)
                .map(|rank| rank as u64)),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }

    pub fn zrevrange(
        &mut self,
        key: &str,
        offset: usize,
        count: usize,
    ) -> Result<Vec<(String, f64)>, String> {
        match self.live(key).map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::Sorted(set)) => Ok(set
                .descending()
                .skip(offset)
                .take(count)
                .map(|(score, member)| (member.clone(), score.0))
                .collect()),
            Some(_) => Err(WRONG_TYPE.to_string()),
        }
    }
}

/// The embedded-mode cache: one process, one lock, the same semantics as [`super::RedisCache`].
pub struct MemoryCache {
    namespace: String,
    state: Mutex<MemoryState>,
}

impl MemoryCache {
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: format!("{namespace}:"),
            state: Mutex::new(MemoryState::default()),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }

    fn with_state<T>(
        &self,
        apply: impl FnOnce(&mut MemoryState) -> Result<T, String>,
    ) -> Result<T, CacheError> {
        apply(&mut self.state.lock()).map_err(CacheError::Reply)
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.key(key);
        self.with_state(|s| s.get(&key))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError> {
        let key = self.key(key);
        self.with_state(|s| {
            s.set(&key, value, ttl);
            Ok(())
        })
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError> {
        let key = self.key(key);
        self.with_state(|s| {
            if s.exists(&key) {
                return Ok(false);
            }
            s.set(&key, value, ttl);
            Ok(true)
        })
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let key = self.key(key);
        self.with_state(|s| Ok(s.del(&key)))
    }

    async fn zset(&self, key: &str, member: &str, score: f64) -> Result<(), CacheError> {
        let key = self.key(key);
        self.with_state(|s| s.zadd(&key, member, score))
    }

    async fn zincr(&self, key: &str, member: &str, by: f64) -> Result<f64, CacheError> {
        let key = self.key(key);
        self.with_state(|s| s.zincrby(&key, member, by))
    }

    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>, CacheError> {
        let key = self.key(key);
        self.with_state(|s| s.zscore(&key, member))
    }

    async fn zrank_desc(&self, key: &str, member: &str) -> Result<Option<u64>, CacheError> {
        let key = self.key(key);
        self.with_state(|s| s.zrevrank(&key, member))
    }

    async fn ztop(
        &self,
        key: &str,
        offset: usize,
        count: usize,
    ) -> Result<Vec<(String, f64)>, CacheError> {
        let key = self.key(key);
        self.with_state(|s| s.zrevrange(&key, offset, count))
    }

    async fn run_script(
        &self,
        script: &AtomicScript,
        keys: &[&str],
        args: &[String],
    ) -> Result<ScriptValue, CacheError> {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        (script.in_memory)(&mut self.state.lock(), &keys, args).map_err(|message| {
            CacheError::Script {
                script: script.name,
                message,
            }
        })
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}
