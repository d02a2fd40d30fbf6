use std::time::Duration;

use fred::prelude::{
    Builder, ClientLike, Config, Expiration, KeysInterface, Pool, ReconnectPolicy, SetOptions,
    SortedSetsInterface,
};
use fred::types::Value;

use super::{AtomicScript, Cache, CacheError, ScriptValue};

const POOL_SIZE: usize = 4;
/// Callers need a fast "no" when Redis is gone, not a queue that hangs the request.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Redis through a small fred connection pool that reconnects forever in the background.
pub struct RedisCache {
    namespace: String,
    pool: Pool,
}

fn unavailable(error: fred::error::Error) -> CacheError {
    CacheError::Unavailable(error.to_string())
}

impl RedisCache {
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, CacheError> {
        let config = Config::from_url(url).map_err(unavailable)?;
        let mut builder = Builder::from_config(config);
        builder
            .with_config(|config| config.fail_fast = true)
            .with_performance_config(|performance| {
                performance.default_command_timeout = COMMAND_TIMEOUT;
            })
            .with_connection_config(|connection| {
                connection.connection_timeout = COMMAND_TIMEOUT;
                connection.internal_command_timeout = COMMAND_TIMEOUT;
                connection.max_command_attempts = 1;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
        let pool = builder.build_pool(POOL_SIZE).map_err(unavailable)?;
        // Connect in the background: a service must start (NOT_SERVING) while Redis is down.
        pool.connect();
        Ok(Self {
            namespace: format!("{namespace}:"),
            pool,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }
}

fn script_value(value: Value) -> Result<ScriptValue, CacheError> {
    Ok(match value {
        Value::Null => ScriptValue::Nil,
        Value::Boolean(flag) => ScriptValue::Int(i64::from(flag)),
        Value::Integer(number) => ScriptValue::Int(number),
        Value::Double(number) => ScriptValue::Text(number.to_string()),
        Value::String(text) => ScriptValue::Text(text.to_string()),
        Value::Bytes(bytes) => ScriptValue::Text(String::from_utf8_lossy(&bytes).into_owned()),
        Value::Array(items) => ScriptValue::Array(
            items
                .into_iter()
                .map(script_value)
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(CacheError::Reply(format!("{other:?}"))),
    })
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let value: Option<Vec<u8>> = self.pool.get(self.key(key)).await.map_err(unavailable)?;
        Ok(value)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError> {
        let expiration = ttl.map(|ttl| Expiration::PX(ttl.as_millis().max(1) as i64));
        let _: Value = self
            .pool
            .set(self.key(key), value, expiration, None, false)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError> {
        let expiration = ttl.map(|ttl| Expiration::PX(ttl.as_millis().max(1) as i64));
        let reply: Value = self
            .pool
            .set(
                self.key(key),
                value,
                expiration,
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(unavailable)?;
        Ok(!matches!(reply, Value::Null))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let removed: i64 = self.pool.del(self.key(key)).await.map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn zset(&self, key: &str, member: &str, score: f64) -> Result<(), CacheError> {
        let _: Value = self
            .pool
            .zadd(self.key(key), None, None, false, false, (score, member))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn zincr(&self, key: &str, member: &str, by: f64) -> Result<f64, CacheError> {
        self.pool
            .zincrby(self.key(key), by, member)
            .await
            .map_err(unavailable)
    }

    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>, CacheError> {
        self.pool
            .zscore(self.key(key), member)
            .await
            .map_err(unavailable)
    }

    async fn zrank_desc(&self, key: &str, member: &str) -> Result<Option<u64>, CacheError> {
        self.pool
            .zrevrank(self.key(key), member, false)
            .await
            .map_err(unavailable)
    }

    async fn ztop(
        &self,
        key: &str,
        offset: usize,
        count: usize,
    ) -> Result<Vec<(String, f64)>, CacheError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let stop = (offset + count - 1) as i64;
        let reply: Value = self
            .pool
            .zrange(self.key(key), offset as i64, stop, None, true, None, true)
            .await
            .map_err(unavailable)?;
        let items = match reply {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => return Err(CacheError::Reply(format!("{other:?}"))),
        };
        // RESP2 answers a flat [member, score, ...]; RESP3 answers [[member, score], ...].
        let flat: Vec<Value> = items
            .into_iter()
            .flat_map(|item| match item {
                Value::Array(pair) => pair,
                single => vec![single],
            })
            .collect();
        flat.chunks(2)
            .map(|pair| match pair {
                [member, score] => {
                    let member = member
                        .as_string()
                        .ok_or_else(|| CacheError::Reply(format!("{member:?}")))?;
                    let score = score
                        .as_f64()
                        .ok_or_else(|| CacheError::Reply(format!("{score:?}")))?;
                    Ok((member, score))
                }
                other => Err(CacheError::Reply(format!("{other:?}"))),
            })
            .collect()
    }

    async fn run_script(
        &self,
        script: &AtomicScript,
        keys: &[&str],
        args: &[String],
    ) -> Result<ScriptValue, CacheError> {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let reply: Value = script
            .redis
            .evalsha_with_reload(self.pool.next(), keys, args.to_vec())
            .await
            .map_err(|error| {
                if matches!(error.kind(), fred::error::ErrorKind::Unknown)
                    || error.details().starts_with("ERR")
                {
                    CacheError::Script {
                        script: script.name,
                        message: error.details().to_string(),
                    }
                } else {
                    unavailable(error)
                }
            })?;
        script_value(reply)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let _: Value = self.pool.ping(None).await.map_err(unavailable)?;
        Ok(())
    }
}
