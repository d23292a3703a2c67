//! Statuscope's own answers on an HTTP/1 client connection — a request it cannot carry to its
//! end, or one past `max_in_flight` — and the tally of a request the upstream did not answer.

use std::time::Instant;

use http::Method;
use tokio::io::AsyncWriteExt;

use super::connection::{After, Client};
use super::exchange::Request;
use super::request_body::Failure;
use crate::classify::{method_label, HttpVersion, UpstreamErrorKind};
use crate::proxy::error_response::ProxyError;
use crate::proxy::finish::{finish, Finished, Outcome};
use crate::proxy::request_head::{checked_target_path, Head};
use crate::proxy::settings::LiveSettings;

impl Client<'_> {
    /// Answers a request statuscope cannot carry to its end, and finishes it; `body_read` when
    /// its body was read whole (else the connection lingers after the answer).
    pub(super) async fn fail(
        &mut self,
        request: &Request<'_>,
        body_read: bool,
        failure: Failure,
    ) -> After {
        let (answer, detail, upstream_error) = match failure {
            Failure::Upstream { kind, .. } => {
                let answer = ProxyError::upstream(kind);
                (Some(answer), answer.detail, Some(kind))
            }
            Failure::BadChunk(reason) => (Some(ProxyError::BAD_REQUEST), reason, None),
            Failure::ClientGone => (None, "", None),
        };
        let answered = match answer {
            Some(answer) => self.answer(answer, detail, false, request.settings).await,
            None => false,
        };
        let outcome = match answer {
            Some(answer) => Outcome::answered(answer, answered),
            None => Outcome::ClientGone,
        };
        self.finish_unanswered(
            request.head,
            &request.method,
            request.started,
            request.settings,
            outcome,
            upstream_error,
        );
        match (answered, body_read) {
            (false, _) => After::Gone,
            (true, true) => After::Close,
            (true, false) => After::Linger,
        }
    }

    /// Sheds a request past `max_in_flight` with a 503; a connection without a request body
    /// to skip stays open.
    pub(super) async fn overloaded(
        &mut self,
        head: &Head,
        method: &Method,
        started: Instant,
        settings: &LiveSettings,
    ) -> After {
        let answer = ProxyError::OVERLOADED;
        let no_body = head.content_length.unwrap_or(0) == 0 && !head.chunked;
        let keep = no_body && !head.http10 && !head.connection.close;
        let answered = self.answer(answer, answer.detail, keep, settings).await;
        let outcome = Outcome::answered(answer, answered);
        self.finish_unanswered(head, method, started, settings, outcome, None);
        match (answered, keep) {
            (true, true) => {
                self.consume(head.head_len);
                After::KeepAlive
            }
            (true, false) if no_body => After::Close,
            (true, false) => After::Linger,
            (false, _) => After::Gone,
        }
    }

    /// Finishes a request the upstream did not answer.
    fn finish_unanswered(
        &mut self,
        head: &Head,
        method: &Method,
        started: Instant,
        settings: &LiveSettings,
        outcome: Outcome,
        upstream_error: Option<UpstreamErrorKind>,
    ) {
        let ended = Instant::now();
        let path = checked_target_path(head.target.of(&self.parts.inbuf));
        let mut finished = Finished::new(method_label(method), path, outcome, started, ended);
        finished.upstream_error = upstream_error;
        finished.probe = head.probe;
        finished.version = HttpVersion::of_http1(head.http10);
        finish(&self.engine.recorder, settings, finished);
        self.last_ended = Some(ended);
    }

    /// Sends one of statuscope's own answers; `false` when the client could not be written to.
    pub(super) async fn answer(
        &mut self,
        answer: ProxyError,
        detail: &str,
        keep_alive: bool,
        settings: &LiveSettings,
    ) -> bool {
        let Ok(wire) = answer.to_http1_keeping(detail, keep_alive) else {
            return false;
        };
        let written = self
            .parts
            .deadline
            .run(
                || Some(Instant::now() + settings.downstream.header_timeout),
                self.stream.write_all(&wire),
            )
            .await;
        matches!(written, Some(Ok(())))
    }
}
