//! The S3 backend, through aws-sdk-s3.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::spill::{ObjectBody, Spill, SpilledObject};
use crate::{ObjectInfo, Operation, PutMode, StoreError};

pub(crate) struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Key prefix of the store inside the bucket: empty or ending in `/`.
    root: String,
}

impl S3Store {
    /// Builds a client from the standard AWS configuration. When
    /// `AWS_ENDPOINT_URL` points at an S3-compatible server, path-style
    /// addressing is used, because such servers rarely resolve
    /// `bucket.host` names.
    pub(crate) async fn connect(bucket: &str, root: &str) -> S3Store {
        let config = aws_config::load_from_env().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&config);
        if std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
            builder = builder.force_path_style(true);
        }
        S3Store::new(aws_sdk_s3::Client::from_conf(builder.build()), bucket, root)
    }

    pub(crate) fn new(client: aws_sdk_s3::Client, bucket: &str, root: &str) -> S3Store {
        let root = root.trim_matches('/');
        S3Store {
            client,
            bucket: bucket.to_owned(),
            root: if root.is_empty() { String::new() } else { format!("{root}/") },
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.root)
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let output = self.send_get(key).await?;
        let data = output.body.collect().await.map_err(|error| body_failed(key, error))?;
        Ok(data.into_bytes())
    }

    async fn send_get(&self, key: &str) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StoreError> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|error| map_error(key, Operation::Get, error))
    }

    /// Reads an object into memory, or streams it chunk by chunk into a
    /// temporary file: the HTTP body is never collected whole, so memory
    /// contains at most a few chunks of a spilled object.
    pub(crate) async fn get_object(&self, key: &str, spill: &Spill) -> Result<ObjectBody, StoreError> {
        let output = self.send_get(key).await?;
        let size = output.content_length().and_then(|length| u64::try_from(length).ok());
        if let Some(size) = size {
            spill.check_size(key, size)?;
        }
        let read_failed = |error| body_failed(key, error);
        let mut body = output.body;
        if !spill.spills(size) {
            // Filled chunk by chunk: `collect().into_bytes()` would copy the
            // chunks into a second buffer and briefly hold the object twice.
            let mut data = Vec::with_capacity(size.unwrap_or(0) as usize);
            while let Some(chunk) = body.next().await {
                data.extend_from_slice(&chunk.map_err(read_failed)?);
            }
            return Ok(ObjectBody::Memory(Bytes::from(data)));
        }

        let file = spill.create_file(key)?;
        let spill_failed = |source| StoreError::Spill {
            key: key.to_owned(),
            dir: spill.dir.clone(),
            source,
        };
        let mut writer = tokio::fs::File::from_std(file.try_clone().map_err(spill_failed)?);
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(read_failed)?;
            written += chunk.len() as u64;
            // The declared length was checked, but a body without one is only known as it arrives.
            spill.check_size(key, written)?;
            writer.write_all(&chunk).await.map_err(spill_failed)?;
        }
        writer.flush().await.map_err(spill_failed)?;
        drop(writer);
        tracing::debug!(key, bytes = written, dir = %spill.dir.display(), "object spilled to a temporary file");
        // SAFETY: the file comes from `Spill::create_file` (unnamed, private
        // to this process) and the writer above is flushed and dropped, so
        // nothing writes to it while it is mapped.
        let spilled = unsafe { SpilledObject::map(key, &spill.dir, file) }?;
        Ok(ObjectBody::Spilled(spilled))
    }

    pub(crate) async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|error| map_error(key, Operation::Get, error))?;
        Ok(ObjectInfo {
            key: key.to_owned(),
            size: output.content_length().unwrap_or(0).max(0) as u64,
            etag: output.e_tag().unwrap_or_default().to_owned(),
            modified: output.last_modified().and_then(|time| std::time::SystemTime::try_from(*time).ok()),
        })
    }

    pub(crate) async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .body(ByteStream::from(body));
        request = match &mode {
            PutMode::Overwrite => request,
            PutMode::Create => request.if_none_match("*"),
            PutMode::Replace(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let status = error.raw_response().map(|response| response.status().as_u16());
                // 412: the condition failed; 409: a concurrent conditional write won the race.
                match (status, &mode) {
                    (Some(412 | 409), PutMode::Create) => Err(StoreError::AlreadyExists { key: key.to_owned() }),
                    (Some(412 | 409), PutMode::Replace(expected)) => Err(StoreError::Conflict {
                        key: key.to_owned(),
                        expected: expected.clone(),
                    }),
                    _ => Err(map_error(key, Operation::Put, error)),
                }
            }
        }
    }

    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut objects = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full_key(prefix))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| map_error(prefix, Operation::List, error))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let Some(key) = key.strip_prefix(self.root.as_str()) else { continue };
                objects.push(ObjectInfo {
                    key: key.to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    etag: object.e_tag().unwrap_or_default().to_owned(),
                    modified: object
                        .last_modified()
                        .and_then(|time| std::time::SystemTime::try_from(*time).ok()),
                });
            }
        }
        Ok(objects)
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|error| map_error(key, Operation::Delete, error))?;
        Ok(())
    }
}

/// Maps an SDK error to a [`StoreError`]: 404 is not-found, 5xx, throttling
/// and transport failures are retryable, other 4xx are final.
/// Maps a failure while reading a GET body, which a retry may get past.
fn body_failed(key: &str, error: aws_sdk_s3::primitives::ByteStreamError) -> StoreError {
    StoreError::S3 {
        key: key.to_owned(),
        operation: Operation::Get,
        message: format!("reading the body failed: {error}"),
        retryable: true,
    }
}

fn map_error<E, R>(key: &str, operation: Operation, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let status = error.raw_response().map(HasStatus::status);
    if status == Some(404) {
        return StoreError::NotFound { key: key.to_owned() };
    }
    let code = error.code().map(str::to_owned);
    if matches!(code.as_deref(), Some("NoSuchKey" | "NotFound")) {
        return StoreError::NotFound { key: key.to_owned() };
    }
    let retryable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        _ => {
            matches!(status, Some(500..=599) | Some(429))
                || matches!(code.as_deref(), Some("SlowDown" | "RequestTimeout" | "InternalError" | "Throttling"))
        }
    };
    let message = match (code, error.message().map(str::to_owned)) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => format!("{}", aws_smithy_error_chain(&error)),
    };
    StoreError::S3 {
        key: key.to_owned(),
        operation,
        message: match status {
            Some(status) => format!("HTTP {status}, {message}"),
            None => message,
        },
        retryable,
    }
}

fn aws_smithy_error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// HTTP status of a raw SDK response.
trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}
