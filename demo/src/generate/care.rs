//! The chart's care records of a seeded patient: a care plan with goals and
//! interventions filed in one of their encounters, a care team of their doctor and a
//! colleague, now and then an implanted device with its UDI (GS1, HIBCC or ICCBBA), a
//! PHQ-2 depression screening, messages about them between staff, and referrals
//! (transactions). The rows are those the `fhir-care`, `fhir-device`,
//! `fhir-questionnaire`, `message` and `transaction` plugins serve.

use anyhow::{Context, Result};
use hearth_emr::{Form, Written};
use hearth_sdk::Value;
use hearth_sdk::sql::Insert;

use super::{Gen, Staff, datetime, moment, take};
use crate::{Batch, Dialect, Transaction};

/// The care plan form (`form_care_plan`, `forms.formdir` `care_plan`).
pub(crate) const CARE_PLAN: Form = Form {
    table: "form_care_plan",
    formdir: "care_plan",
    form_name: "Care Plan",
};

/// The tables whose ids the seed assigns, with their identity column.
pub(crate) const ID_TABLES: [(&str, &str); 6] = [
    ("form_care_plan", "row_key"),
    ("care_teams", "id"),
    ("care_team_member", "id"),
    ("questionnaire_response", "id"),
    ("pnotes", "id"),
    ("transactions", "id"),
];

/// The next ids of the care tables.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    care_plan_row: i64,
    /// `form_care_plan.id`: the form's id, shared by its rows.
    care_plan_form: i64,
    care_team: i64,
    care_team_member: i64,
    response: i64,
    pnote: i64,
    transaction: i64,
}

impl Ids {
    /// Reads the highest ids (the tables are locked by the caller on PostgreSQL).
    pub(crate) async fn reserve(tx: &mut impl Transaction) -> Result<Ids> {
        Ok(Ids {
            care_plan_row: crate::next_key(tx, "form_care_plan", "row_key").await?,
            care_plan_form: crate::next_key(tx, "form_care_plan", "id").await?,
            care_team: crate::next_id(tx, "care_teams").await?,
            care_team_member: crate::next_id(tx, "care_team_member").await?,
            response: crate::next_id(tx, "questionnaire_response").await?,
            pnote: crate::next_id(tx, "pnotes").await?,
            transaction: crate::next_id(tx, "transactions").await?,
        })
    }
}

/// The rows of one batch, in the order they are written.
pub(crate) struct Batches {
    pub(crate) plans: Batch,
    pub(crate) teams: Batch,
    pub(crate) members: Batch,
    pub(crate) devices: Batch,
    pub(crate) responses: Batch,
    pub(crate) notes: Batch,
    pub(crate) transactions: Batch,
    pub(crate) lbt: Batch,
    /// Care plan forms and goals in the batch, for the summary.
    pub(crate) plan_forms: u64,
    pub(crate) goals: u64,
}

impl Default for Batches {
    fn default() -> Self {
        Batches {
            plans: Batch::new("form_care_plan"),
            teams: Batch::new("care_teams"),
            members: Batch::new("care_team_member"),
            devices: Batch::new("lists"),
            responses: Batch::new("questionnaire_response"),
            notes: Batch::new("pnotes"),
            transactions: Batch::new("transactions"),
            lbt: Batch::new("lbt_data"),
            plan_forms: 0,
            goals: 0,
        }
    }
}

impl Batches {
    pub(crate) fn count(&self, summary: &mut crate::Summary) {
        summary.care_plans += self.plan_forms;
        summary.goals += self.goals;
        summary.care_teams += self.teams.len();
        summary.devices += self.devices.len();
        summary.questionnaire_responses += self.responses.len();
        summary.messages += self.notes.len();
        summary.transactions += self.transactions.len();
    }

    pub(crate) async fn write(
        &mut self,
        tx: &mut impl Transaction,
        dialect: Dialect,
    ) -> Result<()> {
        for batch in [
            &mut self.plans,
            &mut self.teams,
            &mut self.members,
            &mut self.devices,
            &mut self.responses,
            &mut self.notes,
            &mut self.transactions,
            &mut self.lbt,
        ] {
            batch.write(tx, dialect).await?;
        }
        Ok(())
    }
}

/// The PHQ-2 (LOINC 55757-9) as a FHIR Questionnaire.
const PHQ2: &str = r#"{"resourceType":"Questionnaire","url":"http://loinc.org/q/55757-9","name":"PHQ2","title":"Patient Health Questionnaire-2 (PHQ-2)","status":"active","code":[{"system":"http://loinc.org","code":"55757-9","display":"Patient Health Questionnaire 2 item (PHQ-2) [Reported]"}],"item":[{"linkId":"/44250-9","code":[{"system":"http://loinc.org","code":"44250-9"}],"text":"Little interest or pleasure in doing things","type":"choice","required":true},{"linkId":"/44255-8","code":[{"system":"http://loinc.org","code":"44255-8"}],"text":"Feeling down, depressed, or hopeless","type":"choice","required":true}]}"#;

/// PHQ answers (LOINC answer list LL358-3) with their scores.
const PHQ_ANSWERS: &[(&str, &str, i64)] = &[
    ("LA6568-5", "Not at all", 0),
    ("LA6569-3", "Several days", 1),
    ("LA6570-1", "More than half the days", 2),
    ("LA6571-9", "Nearly every day", 3),
];

/// The questionnaires the responses answer: the PHQ-2, added once per site. Answers
/// its `questionnaire_repository` id.
pub(crate) async fn questionnaires(tx: &mut impl Transaction, now: &str) -> Result<i64> {
    let found = tx
        .query(
            "SELECT id FROM questionnaire_repository WHERE questionnaire_id = $1",
            vec![Value::Text("55757-9".into())],
        )
        .await
        .context("reading the questionnaires")?;
    if let Some(Value::Integer(id)) = found.first().and_then(|row| row.first()) {
        return Ok(*id);
    }
    let rows = tx
        .query(
            "INSERT INTO questionnaire_repository (uuid, questionnaire_id, version, created_date, \
             modified_date, name, type, profile, active, status, source_url, code, code_display, \
             questionnaire, category) VALUES ($1, $2, 1, $3, $3, $4, 'Questionnaire', \
             'http://hl7.org/fhir/StructureDefinition/Questionnaire', 1, 'active', $5, $2, $4, $6, \
             'Mental health') RETURNING id",
            vec![
                Value::Text(hearth_sdk::comb_uuid(1, [0x42; 16])),
                Value::Text("55757-9".into()),
                Value::Text(now.into()),
                Value::Text("PHQ-2 quick depression assessment".into()),
                Value::Text("http://loinc.org/q/55757-9".into()),
                Value::Text(PHQ2.into()),
            ],
        )
        .await
        .context("adding the PHQ-2")?;
    match rows.first().and_then(|row| row.first()) {
        Some(Value::Integer(id)) => Ok(*id),
        other => anyhow::bail!("unexpected questionnaire id {other:?}"),
    }
}

/// Goals a plan sets (text: OpenEMR's care plan form takes free text).
const GOALS: &[&str] = &[
    "Lose 10 pounds in 6 months",
    "Keep blood pressure below 130/80 mmHg",
    "Keep HbA1c below 7%",
    "Quit smoking within 3 months",
    "Walk 30 minutes five days a week",
    "Sleep 7 hours a night",
];

/// Interventions (SNOMED CT procedures) a plan lists.
const INTERVENTIONS: &[(&str, &str)] = &[
    ("SNOMED-CT:11816003", "Diet education"),
    ("SNOMED-CT:229065009", "Exercise therapy"),
    ("SNOMED-CT:225323000", "Smoking cessation education"),
    ("SNOMED-CT:409063005", "Counseling"),
];

/// Care team roles a colleague has (the `care_team_roles` list).
const ROLES: &[&str] = &[
    "physician",
    "nurse",
    "case_manager",
    "pharmacist",
    "dietitian",
];

/// Implantable devices (title, issuing agency 0 GS1, 1 HIBCC, 2 ICCBBA).
const DEVICES: &[(&str, u8)] = &[
    ("Cardiac pacemaker", 0),
    ("Coronary artery stent", 0),
    ("Total knee prosthesis", 1),
    ("Hip joint prosthesis", 1),
    ("Cochlear implant", 0),
    ("Tissue graft", 2),
];

/// Why staff write about a patient: (note type, text).
const NOTES: &[(&str, &str)] = &[
    (
        "Chart Note",
        "Please review the latest lab results before the next visit.",
    ),
    ("Pharmacy", "Pharmacy called about a refill request."),
    ("Insurance", "Insurance needs a prior authorization form."),
    ("Referral", "Referral letter received from the specialist."),
    (
        "Test Scheduling",
        "Patient asks to move the imaging appointment.",
    ),
    ("Other", "Patient called with a question about the bill."),
];

/// Referral reasons and diagnoses (ICD-10-CM).
const REFERRALS: &[(&str, &str)] = &[
    ("Cardiology consult for chest pain", "ICD10:R07.9"),
    (
        "Endocrinology for poorly controlled diabetes",
        "ICD10:E11.65",
    ),
    ("Orthopedics for chronic knee pain", "ICD10:M25.561"),
    ("Dermatology for a changing mole", "ICD10:D48.5"),
    ("Physical therapy after a fall", "ICD10:W19.XXXA"),
];

/// A two-digit-year date `YYMMDD` of a `YYYY-MM-DD HH:MM:SS` moment, years later.
fn yymmdd(at: &str, years: i64) -> String {
    let year: i64 = at[..4].parse().unwrap_or(2025) + years;
    // 29 February is no day of most years.
    let day = if &at[5..10] == "02-29" {
        "28"
    } else {
        &at[8..10]
    };
    format!("{:02}{}{day}", year % 100, &at[5..7])
}

/// A UDI carrier of the agency, with a lot or serial, made `at`.
fn udi(rng: &mut Gen, agency: u8, at: &str) -> String {
    use rand::Rng;
    match agency {
        0 => format!(
            "(01){:014}(11){}(17){}(10)L{:05}(21){:08}",
            rng.gen_range(10_000_000_000_000u64..99_999_999_999_999),
            yymmdd(at, 0),
            yymmdd(at, 3),
            rng.gen_range(0..100_000),
            rng.gen_range(0..100_000_000)
        ),
        1 => format!(
            "+H{:03}KNEE{:04}1/$$3{}LOT{:04}/16D{}{}{}X",
            rng.gen_range(100..1000),
            rng.gen_range(0..10_000),
            yymmdd(at, 4),
            rng.gen_range(0..10_000),
            &at[..4],
            &at[5..7],
            &at[8..10]
        ),
        _ => format!(
            "=/A9999XYZ100T0944=,{:06}=>0{:02}{:03}",
            rng.gen_range(0..1_000_000),
            (at[..4].parse::<i64>().unwrap_or(2025) + 2) % 100,
            rng.gen_range(1..365)
        ),
    }
}

/// The patient the care records are for.
pub(crate) struct CareOf<'a> {
    pub(crate) pid: i64,
    /// Days since registration.
    pub(crate) since: i64,
    /// (number, time) of each encounter.
    pub(crate) visits: &'a [(i64, String)],
    /// The doctor's user id, user name and facility index.
    pub(crate) doctor: (i64, &'a str, usize),
}

/// The care records of one patient.
pub(crate) fn patient(
    rng: &mut Gen,
    staff: &Staff,
    ids: &mut crate::Ids,
    tables: &mut crate::Tables,
    of: CareOf<'_>,
) {
    use rand::Rng;
    let (doctor, doctor_name, home) = of.doctor;
    let written = Written {
        pid: of.pid,
        by: doctor_name,
    };
    let colleague = |rng: &mut Gen| {
        let others: Vec<&(i64, String, usize)> = staff
            .practitioners
            .iter()
            .filter(|p| p.0 != doctor)
            .collect();
        others[rng.gen_range(0..others.len())]
    };
    // A care plan in one of the encounters: goals and interventions.
    if !of.visits.is_empty() && rng.gen_bool(0.6) {
        let (number, at) = of.visits[rng.gen_range(0..of.visits.len())].clone();
        let form = take(&mut ids.care.care_plan_form);
        let mut row = CARE_PLAN.registration(rng.uuid(), at.as_str(), written, number, form);
        row.set("id", take(&mut ids.forms));
        tables.forms.push(row);
        tables.care.plan_forms += 1;
        let goals = rng.gen_range(1..=2);
        let mut items: Vec<(&str, &str, &str)> = Vec::new();
        for _ in 0..goals {
            items.push(("goal", "", *rng.pick(GOALS)));
        }
        for _ in 0..rng.gen_range(1..=3) {
            let (code, text) = *rng.pick(INTERVENTIONS);
            items.push(("intervention", code, text));
        }
        for (kind, code, text) in items {
            let ended = (kind == "goal").then(|| {
                let due: i64 = at[..4].parse::<i64>().unwrap_or(2025) + 1;
                // A year after 29 February is 28 February.
                let rest = at[4..].replacen("-02-29", "-02-28", 1);
                format!("{due}{rest}")
            });
            let mut row = Insert::into("form_care_plan");
            row.set("row_key", take(&mut ids.care.care_plan_row))
                .set("id", form)
                .set("uuid", rng.uuid())
                .set("date", at.as_str())
                .set("pid", of.pid)
                .set("encounter", number)
                .set("user", doctor_name)
                .set("groupname", hearth_emr::GROUP)
                .set("authorized", 1)
                .set("activity", if rng.gen_bool(0.9) { 1 } else { 0 })
                .set("code", code)
                .set("codetext", text)
                .set("description", text)
                .set("care_plan_type", kind)
                .set("date_end", ended);
            tables.care.plans.push(row);
            if kind == "goal" {
                tables.care.goals += 1;
            }
        }
    }
    let back = rng.gen_range(0..of.since.max(1));
    let at = datetime(moment(rng, back));
    // A care team: the doctor and a colleague.
    if rng.gen_bool(0.5) {
        let team = take(&mut ids.care.care_team);
        let active = rng.gen_bool(0.9);
        let mut row = Insert::into("care_teams");
        row.set("id", team)
            .set("uuid", rng.uuid())
            .set("pid", of.pid)
            .set("status", if active { "active" } else { "inactive" })
            .set("team_name", "Primary care team")
            .set("note", "")
            .set("date_created", at.as_str())
            .set("date_updated", at.as_str())
            .set("created_by", doctor)
            .set("updated_by", doctor);
        tables.care.teams.push(row);
        let other = colleague(rng);
        let role = *rng.pick(ROLES);
        for (user, role, facility) in [
            (doctor, "primary_care_provider", home),
            (other.0, role, other.2),
        ] {
            let mut row = Insert::into("care_team_member");
            row.set("id", take(&mut ids.care.care_team_member))
                .set("care_team_id", team)
                .set("user_id", user)
                .set("role", role)
                .set("facility_id", staff.facilities[facility].0)
                .set("provider_since", &at[..10])
                .set("status", "active")
                .set("date_created", at.as_str())
                .set("date_updated", at.as_str())
                .set("created_by", doctor)
                .set("updated_by", doctor);
            tables.care.members.push(row);
        }
    }
    // Now and then an implanted device.
    if rng.gen_bool(0.08) {
        let (title, agency) = *rng.pick(DEVICES);
        let carrier = udi(rng, agency, &at);
        let mut row = Insert::into("lists");
        row.set("id", take(&mut ids.lists))
            .set("uuid", rng.uuid())
            .set("type", "medical_device")
            .set("pid", of.pid)
            .set("date", at.as_str())
            .set("modifydate", at.as_str())
            .set("activity", 1)
            .set("user", doctor_name)
            .set("groupname", hearth_emr::GROUP)
            .set("title", title)
            .set("udi", carrier.as_str())
            .set("begdate", at.as_str());
        tables.care.devices.push(row);
    }
    // A PHQ-2 screening.
    if rng.gen_bool(0.3) {
        let answers = [*rng.pick(PHQ_ANSWERS), *rng.pick(PHQ_ANSWERS)];
        let items: Vec<String> = ["/44250-9", "/44255-8"]
            .iter()
            .zip(answers)
            .map(|(link, (code, display, _))| {
                format!(
                    r#"{{"linkId":"{link}","answer":[{{"valueCoding":{{"system":"http://loinc.org","code":"{code}","display":"{display}"}}}}]}}"#
                )
            })
            .collect();
        let authored = format!("{}T{}Z", &at[..10], &at[11..]);
        let document = format!(
            r#"{{"resourceType":"QuestionnaireResponse","questionnaire":"http://loinc.org/q/55757-9","status":"completed","authored":"{authored}","item":[{}]}}"#,
            items.join(",")
        );
        let score: i64 = answers.iter().map(|a| a.2).sum();
        let mut row = Insert::into("questionnaire_response");
        row.set("id", take(&mut ids.care.response))
            .set("uuid", rng.uuid())
            .set("response_id", rng.uuid())
            .set("questionnaire_foreign_id", staff.questionnaire)
            .set("questionnaire_id", "55757-9")
            .set("questionnaire_name", "PHQ-2 quick depression assessment")
            .set("patient_id", of.pid)
            .set("creator_user_id", doctor)
            .set("create_time", at.as_str())
            .set("last_updated", at.as_str())
            .set("version", 1)
            .set("status", "completed")
            .set("questionnaire_response", document.as_str())
            .set("form_score", score);
        tables.care.responses.push(row);
    }
    // Messages about the patient between staff.
    for _ in 0..rng.gen_range(0..=2) {
        let back = rng.gen_range(0..of.since.max(1));
        let at = datetime(moment(rng, back));
        let (title, text) = *rng.pick(NOTES);
        let to = colleague(rng).1.clone();
        let mut row = Insert::into("pnotes");
        row.set("id", take(&mut ids.care.pnote))
            .set("date", at.as_str())
            .set(
                "body",
                format!("{} ({doctor_name} to {to}) {text}", &at[..16]),
            )
            .set("pid", of.pid)
            .set("user", doctor_name)
            .set("groupname", hearth_emr::GROUP)
            .set("activity", 1)
            .set("authorized", 0)
            .set("title", title)
            .set("assigned_to", to.as_str())
            .set("deleted", 0)
            .set(
                "message_status",
                *rng.pick(&["New", "Read", "Done", "Done"]),
            );
        tables.care.notes.push(row);
    }
    // A referral.
    if rng.gen_bool(0.15) {
        let tid = take(&mut ids.care.transaction);
        let (reason, diagnosis) = *rng.pick(REFERRALS);
        let mut row = Insert::into("transactions");
        row.set("id", tid)
            .set("date", at.as_str())
            .set("title", "LBTref")
            .set("pid", of.pid)
            .set("user", doctor_name)
            .set("groupname", hearth_emr::GROUP)
            .set("authorized", 1);
        tables.care.transactions.push(row);
        let to = colleague(rng).0;
        for (field, value) in [
            ("body", reason.to_owned()),
            ("refer_date", at[..10].to_owned()),
            ("refer_diag", diagnosis.to_owned()),
            ("refer_from", doctor.to_string()),
            ("refer_to", to.to_string()),
            (
                "refer_risk_level",
                (*rng.pick(&["low", "medium", "high"])).to_owned(),
            ),
            ("refer_vitals", (*rng.pick(&["0", "1"])).to_owned()),
        ] {
            let mut row = Insert::into("lbt_data");
            row.set("form_id", tid)
                .set("field_id", field)
                .set("field_value", value);
            tables.care.lbt.push(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_digit_dates_move_by_years() {
        assert_eq!(yymmdd("2024-03-05 10:00:00", 0), "240305");
        assert_eq!(yymmdd("2024-03-05 10:00:00", 3), "270305");
        assert_eq!(yymmdd("2024-02-29 10:00:00", 3), "270228");
    }
}
