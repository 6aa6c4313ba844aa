//! A realistic sample body per event type, in the documented shape: for docs, test sends from
//! the control plane and tests. Every required field and most optional ones are present, and
//! the values agree with each other (one learner, one exam attempt, one portal).

use crate::EventType;
use serde_json::{Value, json};

const PORTAL_ID: &str = "prt_7d41e2c9";
const ATTEMPT_ID: &str = "att_8f2c41d9e7a3";
const TEST_ID: &str = "tst_52b8e0f4c1";
const EXAM_ID: &str = "exm_1c9a63d2f8";
const STARTED: &str = "2026-11-27T09:02:11Z";
const COMPLETED: &str = "2026-11-27T09:43:34Z";
/// 41 min 23 s, from `STARTED` to `COMPLETED`.
const SPENT_MS: u64 = 2_483_000;

impl EventType {
    /// A realistic sample body in the documented shape of this type; it passes
    /// [`validate_body`](crate::validate_body).
    #[must_use]
    pub fn example_body(self) -> Value {
        match self {
            EventType::AttemptSubmitted => attempt_submitted(),
            EventType::AttemptCompleted => attempt_completed(),
            EventType::AttemptOverrideCreated => attempt_override_created(),
            EventType::ExamSubmitted => exam_submitted(),
            EventType::ExamCompleted => exam_completed(),
            EventType::UserRegistered => user_registered(),
            EventType::UserUpdated => user_updated(),
            EventType::UserAddedToGroup => user_added_to_group(),
            EventType::UserRegisteredForExam => user_registered_for_exam(),
            EventType::AssignmentCompleted => assignment_completed(),
            EventType::FlagPlanted => flag_planted(),
            EventType::StorePurchase => store_purchase(),
            EventType::InviteSent => invite_sent(),
        }
    }
}

// ---- Shared pieces -------------------------------------------------------------------------

fn user() -> Value {
    json!({
        "id": "usr_3b91c0a7f2",
        "name": "Amira Haddad",
        "email": "amira.haddad@example.com",
        "customAttributes": { "employeeNumber": "E-10442", "department": "Cardiology", "cpdHoursTarget": 40 }
    })
}

fn portal() -> Value {
    json!({ "id": PORTAL_ID })
}

fn meta(ty: EventType, timestamp: &str) -> Value {
    json!({ "timestamp": timestamp, "eventName": ty.code() })
}

fn test() -> Value {
    json!({ "id": TEST_ID, "title": "Cardiology Board Review: Paper 2" })
}

fn certificate() -> Value {
    json!({
        "url": "https://learn.example.com/certificates/crt_0e4d7a19b6",
        "certificatePdfPath": "certificates/prt_7d41e2c9/crt_0e4d7a19b6.pdf"
    })
}

/// The attempt's state with both sections and full marking results.
fn state() -> Value {
    json!({
        "responseQuestionMap": [["rsp_a1", "qst_9d20"], ["rsp_a2", "qst_9d21"], ["rsp_b1", "qst_4e07"]],
        "isRevoked": false,
        "isStarted": true,
        "sections": { "items": [
            {
                "sectionId": "sec_ecg",
                "responseIds": ["rsp_a1", "rsp_a2"],
                "isOpen": false,
                "isUnlocked": true,
                "isCompleted": true,
                "totalQuestionsCompleted": 10,
                "totalQuestionsSkipped": 0,
                "marks": { "points": 16, "maxPoints": 20, "credits": 16, "penalties": 0 },
                "timeStarted": STARTED,
                "timeCompleted": "2026-11-27T09:21:40Z",
                "timeSpentInMs": 1_169_000,
                "score": 16,
                "scoreFrac": 0.8,
                "totalCorrect": 8
            },
            {
                "sectionId": "sec_pharm",
                "responseIds": ["rsp_b1"],
                "isOpen": false,
                "isUnlocked": true,
                "isCompleted": true,
                "totalQuestionsCompleted": 9,
                "totalQuestionsSkipped": 1,
                "marks": { "points": 13, "maxPoints": 20, "credits": 14, "penalties": 1 },
                "timeStarted": "2026-11-27T09:21:40Z",
                "timeCompleted": COMPLETED,
                "timeSpentInMs": 1_314_000,
                "score": 13,
                "scoreFrac": 0.65,
                "totalCorrect": 7
            }
        ] },
        "timeStarted": STARTED,
        "timeCompleted": COMPLETED,
        "timeSpentInMs": SPENT_MS,
        "results": { "status": "completed", "markingStatus": "fullyMarked", "pendingMarks": 0 }
    })
}

fn attempt(is_exam: bool, state: Value) -> Value {
    let mut attempt = json!({
        "id": ATTEMPT_ID,
        "isExam": is_exam,
        "score": 29,
        "scoreFrac": 0.725,
        "totalAnsweredCorrectly": 15,
        "marks": { "points": 29, "maxPoints": 40, "credits": 30, "penalties": 1 },
        "totalQuestions": 20,
        "tags": {
            "nonFacetTags": ["board-review"],
            "skill": ["ecg-interpretation", "dosage-calculation"],
            "difficulty": ["hard"],
            "subtopic": ["arrhythmias", "anticoagulants"],
            "topic": ["electrophysiology", "pharmacology"],
            "subject": ["cardiology"],
            "module": ["module-4"],
            "exam": ["board-certification-2026"]
        },
        "totalAnswered": 19,
        "timeStarted": STARTED,
        "timeCompleted": COMPLETED,
        "timeSpentInMs": SPENT_MS
    });
    attempt["state"] = state;
    attempt
}

fn exam(with_user_group: bool) -> Value {
    let mut exam = json!({
        "id": EXAM_ID,
        "name": "Cardiology Board Certification 2026",
        "resitCount": 1,
        "sourceTests": [TEST_ID, "tst_77ac19e035"],
        "sectionGrades": [
            { "id": "sec_ecg", "marks": { "points": 16, "maxPoints": 20 } },
            { "id": "sec_pharm", "marks": { "points": 13, "maxPoints": 20 } }
        ]
    });
    if with_user_group {
        exam["userGroup"] = user_group();
    }
    exam
}

fn user_group() -> Value {
    json!({ "id": "grp_4a0e8c2b1d", "name": "Cardiology Residents 2026" })
}

// ---- Attempt and exam events ---------------------------------------------------------------

fn attempt_submitted() -> Value {
    json!({
        "user": user(),
        "portal": portal(),
        "meta": meta(EventType::AttemptSubmitted, COMPLETED),
        "attempt": attempt(false, state()),
        "test": test(),
        "id": ATTEMPT_ID,
        "timeStarted": STARTED,
        "timeCompleted": COMPLETED,
        "timeSpentInMs": SPENT_MS
    })
}

fn attempt_completed() -> Value {
    // Here the state has no sections and the results are just `{ status }`.
    let mut state = state();
    state["results"] = json!({ "status": "completed" });
    if let Some(state) = state.as_object_mut() {
        state.remove("sections");
    }
    json!({
        "user": user(),
        "portal": portal(),
        "meta": meta(EventType::AttemptCompleted, "2026-11-27T09:43:36Z"),
        "certificate": certificate(),
        "attempt": attempt(false, state),
        "test": test(),
        "id": ATTEMPT_ID,
        "score": 29,
        "scoreFrac": 0.725,
        "timeStarted": STARTED,
        "timeCompleted": COMPLETED,
        "timeSpentInMs": SPENT_MS
    })
}

fn attempt_override_created() -> Value {
    json!({
        "user": user(),
        "portal": portal(),
        "meta": meta(EventType::AttemptOverrideCreated, "2026-11-28T14:05:52Z"),
        "actionType": "override",
        "credits": 32,
        "penalties": 0,
        "score": 32,
        "points": { "oldValue": 29, "newValue": 32, "isOriginal": false },
        "exam": { "id": EXAM_ID },
        "attempt": { "id": ATTEMPT_ID, "user": user() }
    })
}

fn exam_submitted() -> Value {
    json!({
        "user": user(),
        "portal": portal(),
        "meta": meta(EventType::ExamSubmitted, COMPLETED),
        "attempt": attempt(true, state()),
        "test": test(),
        "exam": exam(true),
        "id": ATTEMPT_ID,
        "timeStarted": STARTED,
        "timeCompleted": COMPLETED,
        "timeSpentInMs": SPENT_MS
    })
}

fn exam_completed() -> Value {
    let pass = json!({ "label": "Pass", "minScore": 0.65, "isPass": true });
    let mut state = state();
    state["deferred"] = json!({ "locked": false });
    let mut attempt = attempt(true, state);
    attempt["grade"] = pass.clone();
    attempt["gradeCriteria"] = json!({ "grades": [
        { "label": "Fail", "minScore": 0, "isPass": false },
        pass,
        { "label": "Distinction", "minScore": 0.85, "isPass": true }
    ] });
    json!({
        "user": user(),
        "portal": portal(),
        "meta": meta(EventType::ExamCompleted, "2026-11-27T09:43:36Z"),
        "attempt": attempt,
        "test": test(),
        "exam": exam(false),
        "certificate": certificate(),
        "userGroup": user_group(),
        "id": ATTEMPT_ID,
        "timeStarted": STARTED,
        "timeCompleted": COMPLETED,
        "timeSpentInMs": SPENT_MS
    })
}

// ---- User events ---------------------------------------------------------------------------

fn user_registered() -> Value {
    json!({
        "objectId": "usr_3b91c0a7f2",
        "name": "Amira Haddad",
        "email": "amira.haddad@example.com",
        "subPortalId": "prt_7d41e2c9_north",
        "usergroups": ["grp_4a0e8c2b1d"],
        "timeRegistered": "2026-09-01T08:30:00Z",
        "customAttributes": { "employeeNumber": "E-10442", "department": "Cardiology" },
        "preferences": { "locale": "en-GB" }
    })
}

fn user_updated() -> Value {
    json!({
        "objectId": "usr_3b91c0a7f2",
        "name": "Amira Haddad-Okafor",
        "email": "amira.haddad@example.com",
        "timeRegistered": "2026-09-01T08:30:00Z",
        "usergroups": ["grp_4a0e8c2b1d", "grp_9f13b7e640"],
        "customAttributes": { "employeeNumber": "E-10442", "department": "Cardiology" },
        "previousValues": {
            "name": "Amira Haddad",
            "preferences": { "locale": "en-US" },
            "customAttributes": { "department": "Internal Medicine" }
        }
    })
}

fn user_added_to_group() -> Value {
    json!({
        "portal": portal(),
        "meta": meta(EventType::UserAddedToGroup, "2026-09-01T08:31:12Z"),
        "objectId": "grp_4a0e8c2b1d",
        "name": "Cardiology Residents 2026",
        "totalUsers": 48,
        "description": "First-year cardiology residents, St Luke's intake",
        "isDefaultGroup": false,
        "userType": "learner",
        "moderators": [
            { "objectId": "usr_c0de51a9e2", "name": "Dr. Jonas Weber" },
            { "objectId": "usr_71f3b2d8a4", "name": "Priya Raman" }
        ],
        "dateAdded": "2026-09-01T08:31:12Z",
        "user": user()
    })
}

fn user_registered_for_exam() -> Value {
    json!({
        "user": user(),
        "portal": portal(),
        "meta": meta(EventType::UserRegisteredForExam, "2026-10-15T12:00:04Z"),
        "exam": {
            "objectId": EXAM_ID,
            "url": "https://learn.example.com/exams/exm_1c9a63d2f8",
            "name": "Cardiology Board Certification 2026",
            "schedule": { "openDate": "2026-11-20T00:00:00Z", "closeDate": "2026-12-04T23:59:59Z" }
        },
        "userGroup": { "objectId": "grp_4a0e8c2b1d", "name": "Cardiology Residents 2026" }
    })
}

// ---- Other events --------------------------------------------------------------------------

fn assignment_completed() -> Value {
    json!({
        "user": user(),
        "portal": portal(),
        "meta": meta(EventType::AssignmentCompleted, "2026-11-12T17:20:45Z"),
        "assignment": { "objectId": "asg_5e2b9d0c17", "name": "Week 6: Heart Failure Case Studies", "status": "completed" },
        "assignmentGroup": { "objectId": "asgrp_b3f8a1c604", "name": "Autumn Term Assignments" }
    })
}

fn flag_planted() -> Value {
    json!({
        "portal": portal(),
        "objectId": "flg_2d7e94b0a3",
        "planter": user(),
        "comment": "Option C and D look identical on mobile; the ECG image does not load.",
        "createdAt": "2026-11-27T09:15:08Z",
        "question": {
            "objectId": "qst_9d21",
            "stem": "<p>A 64-year-old man presents with palpitations. What does the ECG show?</p>",
            "url": "https://learn.example.com/questions/qst_9d21"
        },
        "test": { "objectId": TEST_ID, "title": "Cardiology Board Review: Paper 2" }
    })
}

fn store_purchase() -> Value {
    json!({
        "user": { "id": "usr_3b91c0a7f2", "name": "Amira Haddad", "email": "amira.haddad@example.com" },
        "portal": portal(),
        "objectId": "prd_0a6c3e91f5",
        "title": "Cardiology Question Bank: 12-month access",
        "unlockActions": [
            { "type": "unlockTest", "targetId": "tst_77ac19e035" },
            { "type": "addToGroup", "targetId": "grp_9f13b7e640" }
        ],
        "purchaseMethod": "card",
        "shortDescription": "1,200 board-style questions with worked explanations.",
        "purchasedAt": "2026-11-03T19:47:22Z"
    })
}

fn invite_sent() -> Value {
    json!({
        "user": user(),
        "portal": portal(),
        "meta": meta(EventType::InviteSent, "2026-08-28T10:02:37Z"),
        "invite": {
            "objectId": "inv_6b0f2e8d41",
            "expiryDate": "2026-09-11T10:02:37Z",
            "inviteEmail": "amira.haddad@example.com",
            "targetId": "grp_4a0e8c2b1d",
            "personalMessage": "Welcome to the residency programme. Your first exam opens in November.",
            "totalTries": 1
        }
    })
}
