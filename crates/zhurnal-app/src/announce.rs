//! Announcements: teachers and class teachers post to the students and parents of their own
//! classes; the abuse controls (rate limit, link allow-list, quiet-hours hold) decide in the
//! domain; the school admin releases held and recalls delivered ones. Every send, refusal,
//! hold, release and recall is audited.

use std::collections::HashSet;

use zhurnal_domain::policy::Resource;
use zhurnal_domain::{Action, Actor, AnnouncementStatus, ClassId, SchoolId, authorize};
use zhurnal_store::{AnnouncementRow, NewAnnouncement, NewAudit, StoreError};

use crate::{App, AppError};

/// What the school admin does to an announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moderation {
    /// Held → delivered.
    Release,
    /// Delivered or held → recalled (hidden from the recipients).
    Recall,
}

fn event(base: &NewAudit, at: i64, action: &str, result: &str) -> NewAudit {
    NewAudit { at, action: action.into(), result: result.into(), ..base.clone() }
}

impl App {
    /// Posts `body` to the classes. Refused (with a Russian message, nothing stored) when the
    /// actor may not post to one of them, the text breaks the rules or the sender is over the
    /// rate limit; held for review when it is a bulk send in the quiet hours.
    pub async fn post_announcement(
        &self,
        actor: &Actor,
        classes: &[ClassId],
        body: &str,
        base: &NewAudit,
    ) -> Result<AnnouncementRow, AppError> {
        let now = self.now_micros();
        let mut unique: Vec<ClassId> = Vec::new();
        for c in classes {
            if !unique.contains(c) {
                unique.push(*c);
            }
        }
        let mut school: Option<SchoolId> = None;
        let mut recipients = 0usize;
        let today = self.today();
        for c in &unique {
            let class = match self.store.get_class(*c).await {
                Ok(class) => class,
                Err(StoreError::NotFound(_)) => {
                    return Err(AppError::Invalid(format!(
                        "класс {} не найден: выберите класс из списка",
                        c.0
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let row = self.store.get_school(class.school_id).await?;
            if let Err(denied) = authorize(
                actor,
                Action::PostAnnouncement,
                &Resource::Class { place: row.place(), class: class.id },
            ) {
                let e = event(base, now, "announcement.refused", "denied")
                    .target("class", class.id)
                    .school(row.id.0)
                    .reason("not_own_class");
                self.store.append_audit(e).await?;
                return Err(denied.into());
            }
            if school.is_some_and(|s| s != row.id) {
                return Err(AppError::Invalid(
                    "объявление отправляется классам одной школы: разделите отправку".into(),
                ));
            }
            school = Some(row.id);
            let roster = self.store.list_roster(class.id, today).await?;
            let parents: HashSet<_> = self
                .store
                .list_class_guardians(class.id, today)
                .await?
                .into_iter()
                .map(|g| g.parent.id)
                .collect();
            recipients += roster.len() + parents.len();
        }
        let rules = &self.rules.announcements;
        let sent = self.store.count_announcements_since(actor.person, now - 3_600_000_000).await?;
        let local = self.clock.now().with_timezone(&self.offset()).time();
        let status = match rules.decide(
            body,
            unique.len(),
            recipients,
            u32::try_from(sent).unwrap_or(u32::MAX),
            local,
        ) {
            Ok(s) => s,
            Err(why) => {
                let reason = match why {
                    zhurnal_domain::AnnouncementError::RateLimited { .. } => "rate_limited",
                    zhurnal_domain::AnnouncementError::LinkNotAllowed { .. } => "link_not_allowed",
                    _ => "invalid",
                };
                let mut e = event(base, now, "announcement.refused", "refused").reason(reason);
                if let Some(s) = school {
                    e = e.school(s.0);
                }
                self.store.append_audit(e).await?;
                return Err(match why {
                    zhurnal_domain::AnnouncementError::RateLimited { .. } => {
                        AppError::RateLimited(why.to_string())
                    }
                    _ => AppError::Invalid(why.to_string()),
                });
            }
        };
        let school = school.ok_or_else(|| {
            AppError::Invalid("не выбран ни один класс: отметьте хотя бы один класс".into())
        })?;
        let uid = uuid::Uuid::new_v4().to_string();
        let action = match status {
            AnnouncementStatus::Held => "announcement.hold",
            _ => "announcement.send",
        };
        let audit = event(base, now, action, "ok").school(school.0).details(serde_json::json!({
            "classes": unique.iter().map(|c| c.0).collect::<Vec<_>>(),
            "recipients": recipients,
            "length": body.chars().count(),
        }));
        let row = self
            .store
            .insert_announcement(
                &NewAnnouncement {
                    uid,
                    school_id: school,
                    sender_id: actor.person,
                    body: body.trim().to_string(),
                    status,
                    recipient_count: i64::try_from(recipients).unwrap_or(i64::MAX),
                    created_at: now,
                    classes: unique,
                },
                audit,
            )
            .await?;
        Ok(row)
    }

    /// Releases or recalls an announcement (school admin of its school).
    pub async fn moderate_announcement(
        &self,
        actor: &Actor,
        uid: &str,
        op: Moderation,
        base: &NewAudit,
    ) -> Result<AnnouncementRow, AppError> {
        let not_found = || AppError::Store(StoreError::NotFound(format!("объявление {uid}")));
        let a = match self.store.get_announcement(uid).await {
            Ok(a) => a,
            Err(StoreError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let school = self.store.get_school(a.school_id).await?;
        authorize(actor, Action::ModerateAnnouncements, &Resource::School(school.place()))?;
        let (from, to, action): (&[AnnouncementStatus], _, _) = match op {
            Moderation::Release => {
                (&[AnnouncementStatus::Held], AnnouncementStatus::Delivered, "announcement.release")
            }
            Moderation::Recall => (
                &[AnnouncementStatus::Delivered, AnnouncementStatus::Held],
                AnnouncementStatus::Recalled,
                "announcement.recall",
            ),
        };
        let now = self.now_micros();
        let audit = event(base, now, action, "ok")
            .target("announcement", &a.uid)
            .school(school.id.0)
            .details(serde_json::json!({ "from": a.status.code(), "sender": a.sender_id.0 }));
        match self.store.review_announcement(a.id, from, to, actor.person, now, audit).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(AppError::Invalid(format!(
                    "объявление уже {}: действие невозможно",
                    a.status.title()
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(self.store.get_announcement(uid).await?)
    }

    /// Announcements a school admin reviews (every status, newest first).
    pub async fn school_announcements(
        &self,
        actor: &Actor,
        school: SchoolId,
    ) -> Result<Vec<AnnouncementRow>, AppError> {
        let row = self.store.get_school(school).await?;
        authorize(actor, Action::ModerateAnnouncements, &Resource::School(row.place()))?;
        Ok(self.store.list_school_announcements(school, 200).await?)
    }

    /// Delivered announcements addressed to the actor: their own class as a student, their
    /// children's classes as a parent (before a departure only), newest first.
    pub async fn received_announcements(
        &self,
        actor: &Actor,
    ) -> Result<Vec<AnnouncementRow>, AppError> {
        let mut classes: Vec<(ClassId, Option<chrono::NaiveDate>)> =
            actor.enrolled_in.iter().map(|(_, c)| (*c, None)).collect();
        for child in &actor.children {
            let enrolments = self.store.list_enrolments(child.child).await?;
            if let Some(e) =
                enrolments.iter().rev().find(|e| e.departed_on.is_none()).or(enrolments.last())
            {
                classes.push((e.class_id, child.visible_until));
            }
        }
        let offset = self.offset();
        let mut out: Vec<AnnouncementRow> = Vec::new();
        for (class, until) in classes {
            for a in self.store.list_class_announcements(class, 50).await? {
                let day = chrono::DateTime::from_timestamp_micros(a.created_at)
                    .map(|t| t.with_timezone(&offset).date_naive());
                let visible = match (until, day) {
                    (Some(u), Some(d)) => d <= u,
                    _ => true,
                };
                if visible && !out.iter().any(|o| o.id == a.id) {
                    out.push(a);
                }
            }
        }
        out.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
        Ok(out)
    }
}
