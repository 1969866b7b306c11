//! A C-CDA R2.1 Continuity of Care Document (CCD) for one patient, from the chart Hearth
//! holds: demographics (`patient_data`), problems, allergies and medications (`lists`),
//! immunizations (`immunizations`, CVX), vital signs (`form_vitals`) and encounters
//! (`form_encounter`), with the site's organization (`facility`) as author and custodian.
//!
//! The XML is written with `quick-xml`'s event writer, so every name and value is escaped
//! by the library, never pasted into a string. Each section carries its C-CDA template id
//! (the "entries required" versions with their R2.1 extensions), a narrative table, and
//! coded entries with their entry templates; a section with nothing to say has
//! `nullFlavor="NI"`, as C-CDA allows. Dates may narrow the encounters, immunizations and
//! vital signs to a period (`start`, `end`), as `$docref` asks.

use hearth_sdk::params;
use hearth_sdk::store::{self, Row, Value};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// What to generate.
pub struct Request<'a> {
    /// The patient's pid.
    pub pid: i64,
    /// The first day of the period, `YYYY-MM-DD`.
    pub start: Option<&'a str>,
    /// The last day of the period, `YYYY-MM-DD`.
    pub end: Option<&'a str>,
    /// Now, `YYYY-MM-DD HH:MM:SS` (UTC).
    pub now: &'a str,
    /// The document's own id (a uuid).
    pub document_id: &'a str,
}

/// The CCD document template (R2.1).
pub const CCD_TEMPLATE: &str = "2.16.840.1.113883.10.20.22.1.2";
/// The US Realm Header template.
pub const US_REALM_HEADER: &str = "2.16.840.1.113883.10.20.22.1.1";
const R21: &str = "2015-08-01";
const LOINC: &str = "2.16.840.1.113883.6.1";
const SNOMED: &str = "2.16.840.1.113883.6.96";
const ICD10CM: &str = "2.16.840.1.113883.6.90";
const RXNORM: &str = "2.16.840.1.113883.6.88";
const CVX: &str = "2.16.840.1.113883.12.292";
const ACT_CODE: &str = "2.16.840.1.113883.5.4";

type Out = Result<(), String>;

/// The writer, with the few shapes a CDA document is made of.
struct Xml {
    w: Writer<Vec<u8>>,
}

impl Xml {
    fn event(&mut self, event: Event<'_>) -> Out {
        self.w.write_event(event).map_err(|e| e.to_string())
    }
    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> Out {
        self.event(Event::Start(
            BytesStart::new(name).with_attributes(attrs.iter().copied()),
        ))
    }
    fn close(&mut self, name: &str) -> Out {
        self.event(Event::End(BytesEnd::new(name)))
    }
    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> Out {
        self.event(Event::Empty(
            BytesStart::new(name).with_attributes(attrs.iter().copied()),
        ))
    }
    fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> Out {
        self.open(name, attrs)?;
        self.event(Event::Text(BytesText::new(text)))?;
        self.close(name)
    }
    fn template(&mut self, root: &str, extension: Option<&str>) -> Out {
        match extension {
            Some(ext) => self.empty("templateId", &[("root", root), ("extension", ext)]),
            None => self.empty("templateId", &[("root", root)]),
        }
    }
    fn id(&mut self, root: &str) -> Out {
        self.empty("id", &[("root", root)])
    }
    fn time(&mut self, name: &str, value: Option<&str>) -> Out {
        match value.and_then(hl7_time) {
            Some(v) => self.empty(name, &[("value", v.as_str())]),
            None => self.empty(name, &[("nullFlavor", "UNK")]),
        }
    }
}

/// A stored date (`YYYY-MM-DD[ HH:MM:SS]`) as an HL7 TS: `YYYYMMDD` or
/// `YYYYMMDDHHMMSS+0000`.
pub fn hl7_time(stored: &str) -> Option<String> {
    let digits: String = stored.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        8 if digits != "00000000" => Some(digits),
        n if n >= 14 && !digits.starts_with("0000") => Some(format!("{}+0000", &digits[..14])),
        _ => None,
    }
}

fn text_of<'a>(row: &Row<'a>, column: &str) -> &'a str {
    row.text(column).map(str::trim).unwrap_or("")
}

/// The first code of `system` in an OpenEMR code list (`ICD10:I10;SNOMED-CT:38341003`).
fn listed<'a>(codes: &'a str, prefixes: &[&str]) -> Option<(&'a str, &'a str)> {
    codes.split(';').find_map(|item| {
        let (prefix, code) = item.trim().split_once(':')?;
        prefixes
            .iter()
            .find(|p| p.eq_ignore_ascii_case(prefix))
            .map(|_| (prefix, code.trim()))
            .filter(|(_, code)| !code.is_empty())
    })
}

/// A period condition on `column` for the request's dates.
fn within(req: &Request<'_>, column: &str, params: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    if let Some(start) = req.start {
        params.push(Value::from(format!("{start} 00:00:00")));
        sql.push_str(&format!(" AND {column} >= ${}", params.len()));
    }
    if let Some(end) = req.end {
        params.push(Value::from(format!("{end} 23:59:59")));
        sql.push_str(&format!(" AND {column} <= ${}", params.len()));
    }
    sql
}

/// The CCD for `req`, as UTF-8 XML.
pub fn generate(req: &Request<'_>) -> Result<String, String> {
    let db = |e: store::StoreError| e.to_string();
    let patient = store::query_one(
        "SELECT uuid, fname, mname, lname, \"DOB\" AS dob, sex, street, city, state, postal_code, \
         country_code, phone_home, phone_cell, email FROM patient_data WHERE pid = $1",
        params![req.pid],
    )
    .map_err(db)?
    .ok_or("the patient is gone")?;
    let org = store::query_one(
        "SELECT name, phone, street, city, state, postal_code FROM facility \
         ORDER BY primary_business_entity DESC, id LIMIT 1",
        &[],
    )
    .map_err(db)?;
    let issues = |kind: &str| {
        store::query(
            "SELECT uuid, title, diagnosis, CAST(begdate AS TEXT) AS begdate, \
             CAST(enddate AS TEXT) AS enddate, reaction, severity_al FROM lists \
             WHERE pid = $1 AND type = $2 ORDER BY begdate, id",
            params![req.pid, kind],
        )
        .map_err(db)
    };
    let problems = issues("medical_problem")?;
    let allergies = issues("allergy")?;
    let medications = issues("medication")?;
    let mut p = vec![Value::from(req.pid)];
    let when = within(req, "i.administered_date", &mut p);
    let immunizations = store::query(
        &format!(
            "SELECT i.uuid, CAST(i.administered_date AS TEXT) AS administered, i.cvx_code, \
             c.code_text, i.lot_number FROM immunizations i \
             LEFT JOIN codes c ON c.code_type = 100 AND c.code = i.cvx_code \
             WHERE i.patient_id = $1 AND i.added_erroneously = 0 \
             AND i.completion_status <> 'Refused' AND i.completion_status <> 'Not_Administered'{when} \
             ORDER BY i.administered_date, i.id"
        ),
        &p,
    )
    .map_err(db)?;
    let mut p = vec![Value::from(req.pid)];
    let when = within(req, "v.date", &mut p);
    let vitals = store::query(
        &format!(
            "SELECT v.uuid, CAST(v.date AS TEXT) AS taken, v.bps, v.bpd, v.weight, v.height, \
             v.temperature, v.pulse, v.respiration, v.oxygen_saturation, v.\"BMI\" AS bmi \
             FROM form_vitals v WHERE v.pid = $1 AND EXISTS (SELECT 1 FROM forms f \
             WHERE f.form_id = v.id AND f.formdir = 'vitals' AND f.deleted = 0){when} \
             ORDER BY v.date, v.id"
        ),
        &p,
    )
    .map_err(db)?;
    let mut p = vec![Value::from(req.pid)];
    let when = within(req, "fe.date", &mut p);
    let encounters = store::query(
        &format!(
            "SELECT fe.uuid, CAST(fe.date AS TEXT) AS seen, fe.reason, fe.class_code, \
             fe.facility FROM form_encounter fe WHERE fe.pid = $1{when} ORDER BY fe.date, fe.id"
        ),
        &p,
    )
    .map_err(db)?;

    let mut x = Xml {
        w: Writer::new_with_indent(Vec::new(), b' ', 2),
    };
    x.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    x.open(
        "ClinicalDocument",
        &[
            ("xmlns", "urn:hl7-org:v3"),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xmlns:sdtc", "urn:hl7-org:sdtc"),
        ],
    )?;
    x.empty("realmCode", &[("code", "US")])?;
    x.empty(
        "typeId",
        &[
            ("root", "2.16.840.1.113883.1.3"),
            ("extension", "POCD_HD000040"),
        ],
    )?;
    x.template(US_REALM_HEADER, None)?;
    x.template(US_REALM_HEADER, Some(R21))?;
    x.template(CCD_TEMPLATE, None)?;
    x.template(CCD_TEMPLATE, Some(R21))?;
    x.id(req.document_id)?;
    x.empty(
        "code",
        &[
            ("code", "34133-9"),
            ("codeSystem", LOINC),
            ("codeSystemName", "LOINC"),
            ("displayName", "Summarization of Episode Note"),
        ],
    )?;
    x.text("title", &[], "Continuity of Care Document")?;
    x.time("effectiveTime", Some(req.now))?;
    x.empty(
        "confidentialityCode",
        &[("code", "N"), ("codeSystem", "2.16.840.1.113883.5.25")],
    )?;
    x.empty("languageCode", &[("code", "en-US")])?;

    // recordTarget: the patient.
    x.open("recordTarget", &[])?;
    x.open("patientRole", &[])?;
    x.id(text_of(&patient.row(), "uuid"))?;
    address(&mut x, "HP", &patient.row())?;
    let phone = [
        text_of(&patient.row(), "phone_home"),
        text_of(&patient.row(), "phone_cell"),
    ]
    .into_iter()
    .find(|p| !p.is_empty())
    .map(|p| format!("tel:{p}"));
    match phone {
        Some(tel) => x.empty("telecom", &[("use", "HP"), ("value", tel.as_str())])?,
        None => x.empty("telecom", &[("nullFlavor", "UNK")])?,
    }
    let email = text_of(&patient.row(), "email");
    if !email.is_empty() {
        x.empty("telecom", &[("value", format!("mailto:{email}").as_str())])?;
    }
    x.open("patient", &[])?;
    x.open("name", &[("use", "L")])?;
    for given in [
        text_of(&patient.row(), "fname"),
        text_of(&patient.row(), "mname"),
    ] {
        if !given.is_empty() {
            x.text("given", &[], given)?;
        }
    }
    x.text("family", &[], text_of(&patient.row(), "lname"))?;
    x.close("name")?;
    let (gender, gender_name) = match text_of(&patient.row(), "sex").to_ascii_lowercase().as_str() {
        "male" | "m" => ("M", "Male"),
        "female" | "f" => ("F", "Female"),
        _ => ("UN", "Undifferentiated"),
    };
    x.empty(
        "administrativeGenderCode",
        &[
            ("code", gender),
            ("codeSystem", "2.16.840.1.113883.5.1"),
            ("displayName", gender_name),
        ],
    )?;
    x.time("birthTime", patient.text("dob"))?;
    x.empty("raceCode", &[("nullFlavor", "UNK")])?;
    x.empty("ethnicGroupCode", &[("nullFlavor", "UNK")])?;
    x.open("languageCommunication", &[])?;
    x.empty("languageCode", &[("code", "en")])?;
    x.close("languageCommunication")?;
    x.close("patient")?;
    x.close("patientRole")?;
    x.close("recordTarget")?;

    // author (this system) and custodian (the site's organization).
    x.open("author", &[])?;
    x.time("time", Some(req.now))?;
    x.open("assignedAuthor", &[])?;
    x.empty("id", &[("nullFlavor", "NA")])?;
    organization_contact(&mut x, org.as_ref().map(|o| o.row()))?;
    x.open("assignedAuthoringDevice", &[])?;
    x.text("manufacturerModelName", &[], "Hearth")?;
    x.text("softwareName", &[], "Hearth")?;
    x.close("assignedAuthoringDevice")?;
    x.close("assignedAuthor")?;
    x.close("author")?;
    x.open("custodian", &[])?;
    x.open("assignedCustodian", &[])?;
    x.open("representedCustodianOrganization", &[])?;
    x.empty("id", &[("nullFlavor", "UNK")])?;
    let org_name = org.as_ref().map(|o| text_of(&o.row(), "name").to_owned());
    x.text(
        "name",
        &[],
        org_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("Hearth"),
    )?;
    organization_contact(&mut x, org.as_ref().map(|o| o.row()))?;
    x.close("representedCustodianOrganization")?;
    x.close("assignedCustodian")?;
    x.close("custodian")?;

    // documentationOf: the care the document summarizes.
    x.open("documentationOf", &[])?;
    x.open("serviceEvent", &[("classCode", "PCPR")])?;
    x.open("effectiveTime", &[])?;
    let first = encounters
        .iter()
        .find_map(|e| e.text("seen").map(str::to_owned));
    x.time("low", req.start.or(first.as_deref()).or(Some(req.now)))?;
    x.time("high", req.end.or(Some(req.now)))?;
    x.close("effectiveTime")?;
    x.close("serviceEvent")?;
    x.close("documentationOf")?;

    x.open("component", &[])?;
    x.open("structuredBody", &[])?;

    // Allergies.
    section(
        &mut x,
        Section {
            template: "2.16.840.1.113883.10.20.22.2.6.1",
            code: "48765-2",
            name: "Allergies and adverse reactions Document",
            title: "Allergies and Intolerances",
            headers: &["Substance", "Reaction", "Severity", "Since"],
        },
        allergies.iter().map(|r| {
            vec![
                text_of(&r, "title").to_owned(),
                text_of(&r, "reaction").to_owned(),
                text_of(&r, "severity_al").to_owned(),
                text_of(&r, "begdate").chars().take(10).collect(),
            ]
        }),
        |x| {
            for (i, r) in allergies.iter().enumerate() {
                allergy_entry(x, &r, &format!("allergy{}", i + 1))?;
            }
            Ok(())
        },
    )?;
    // Medications.
    section(
        &mut x,
        Section {
            template: "2.16.840.1.113883.10.20.22.2.1.1",
            code: "10160-0",
            name: "History of Medication use Narrative",
            title: "Medications",
            headers: &["Medication", "Start", "Stop"],
        },
        medications.iter().map(|r| {
            vec![
                text_of(&r, "title").to_owned(),
                text_of(&r, "begdate").chars().take(10).collect(),
                text_of(&r, "enddate").chars().take(10).collect(),
            ]
        }),
        |x| {
            for (i, r) in medications.iter().enumerate() {
                medication_entry(x, &r, &format!("medication{}", i + 1))?;
            }
            Ok(())
        },
    )?;
    // Problems.
    section(
        &mut x,
        Section {
            template: "2.16.840.1.113883.10.20.22.2.5.1",
            code: "11450-4",
            name: "Problem list - Reported",
            title: "Problems",
            headers: &["Problem", "Code", "Onset", "Resolved"],
        },
        problems.iter().map(|r| {
            vec![
                text_of(&r, "title").to_owned(),
                text_of(&r, "diagnosis").to_owned(),
                text_of(&r, "begdate").chars().take(10).collect(),
                text_of(&r, "enddate").chars().take(10).collect(),
            ]
        }),
        |x| {
            for (i, r) in problems.iter().enumerate() {
                problem_entry(x, &r, &format!("problem{}", i + 1))?;
            }
            Ok(())
        },
    )?;
    // Immunizations.
    section(
        &mut x,
        Section {
            template: "2.16.840.1.113883.10.20.22.2.2.1",
            code: "11369-6",
            name: "History of Immunization Narrative",
            title: "Immunizations",
            headers: &["Vaccine", "CVX", "Date", "Lot"],
        },
        immunizations.iter().map(|r| {
            vec![
                text_of(&r, "code_text").to_owned(),
                text_of(&r, "cvx_code").to_owned(),
                text_of(&r, "administered").chars().take(10).collect(),
                text_of(&r, "lot_number").to_owned(),
            ]
        }),
        |x| {
            for (i, r) in immunizations.iter().enumerate() {
                immunization_entry(x, &r, &format!("immunization{}", i + 1))?;
            }
            Ok(())
        },
    )?;
    // Vital signs.
    section(
        &mut x,
        Section {
            template: "2.16.840.1.113883.10.20.22.2.4.1",
            code: "8716-3",
            name: "Vital signs",
            title: "Vital Signs",
            headers: &[
                "Date",
                "Blood pressure",
                "Pulse",
                "Weight",
                "Height",
                "Temperature",
            ],
        },
        vitals.iter().map(|r| {
            vec![
                text_of(&r, "taken").chars().take(16).collect(),
                format!("{}/{}", text_of(&r, "bps"), text_of(&r, "bpd")),
                number(&r, "pulse").unwrap_or_default(),
                number(&r, "weight")
                    .map(|w| format!("{w} lb"))
                    .unwrap_or_default(),
                number(&r, "height")
                    .map(|h| format!("{h} in"))
                    .unwrap_or_default(),
                number(&r, "temperature")
                    .map(|t| format!("{t} °F"))
                    .unwrap_or_default(),
            ]
        }),
        |x| {
            for (i, r) in vitals.iter().enumerate() {
                vitals_entry(x, &r, &format!("vitals{}", i + 1))?;
            }
            Ok(())
        },
    )?;
    // Encounters.
    section(
        &mut x,
        Section {
            template: "2.16.840.1.113883.10.20.22.2.22.1",
            code: "46240-8",
            name: "History of Hospitalizations+Outpatient visits Narrative",
            title: "Encounters",
            headers: &["Date", "Reason", "Facility"],
        },
        encounters.iter().map(|r| {
            vec![
                text_of(&r, "seen").chars().take(16).collect(),
                text_of(&r, "reason").to_owned(),
                text_of(&r, "facility").to_owned(),
            ]
        }),
        |x| {
            for (i, r) in encounters.iter().enumerate() {
                encounter_entry(x, &r, &format!("encounter{}", i + 1))?;
            }
            Ok(())
        },
    )?;

    x.close("structuredBody")?;
    x.close("component")?;
    x.close("ClinicalDocument")?;
    String::from_utf8(x.w.into_inner()).map_err(|e| e.to_string())
}

/// A real column as text, without a trailing `.0`.
fn number(row: &Row<'_>, column: &str) -> Option<String> {
    let value = row
        .real(column)
        .or_else(|| row.int(column).map(|i| i as f64))
        .or_else(|| row.text(column).and_then(|t| t.trim().parse().ok()))?;
    (value > 0.0).then(|| {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    })
}

fn address(x: &mut Xml, use_: &str, row: &Row<'_>) -> Out {
    let street = text_of(row, "street");
    if street.is_empty() && text_of(row, "city").is_empty() {
        return x.empty("addr", &[("nullFlavor", "UNK")]);
    }
    x.open("addr", &[("use", use_)])?;
    for (name, column) in [
        ("streetAddressLine", "street"),
        ("city", "city"),
        ("state", "state"),
        ("postalCode", "postal_code"),
    ] {
        let value = text_of(row, column);
        if value.is_empty() {
            x.empty(name, &[("nullFlavor", "UNK")])?;
        } else {
            x.text(name, &[], value)?;
        }
    }
    let country = text_of(row, "country_code");
    x.text(
        "country",
        &[],
        if country.is_empty() { "US" } else { country },
    )?;
    x.close("addr")
}

fn organization_contact(x: &mut Xml, org: Option<Row<'_>>) -> Out {
    match org {
        Some(row) => {
            let phone = text_of(&row, "phone");
            if phone.is_empty() {
                x.empty("telecom", &[("nullFlavor", "UNK")])?;
            } else {
                x.empty(
                    "telecom",
                    &[("use", "WP"), ("value", format!("tel:{phone}").as_str())],
                )?;
            }
            address(x, "WP", &row)
        }
        None => {
            x.empty("telecom", &[("nullFlavor", "UNK")])?;
            x.empty("addr", &[("nullFlavor", "UNK")])
        }
    }
}

struct Section {
    template: &'static str,
    code: &'static str,
    name: &'static str,
    title: &'static str,
    headers: &'static [&'static str],
}

/// A section: its templates, code, title, a narrative table whose first cell of row `n`
/// has the id the `n`th entry's text refers to, and its entries.
fn section(
    x: &mut Xml,
    s: Section,
    rows: impl Iterator<Item = Vec<String>>,
    entries: impl FnOnce(&mut Xml) -> Out,
) -> Out {
    let rows: Vec<Vec<String>> = rows.collect();
    x.open("component", &[])?;
    if rows.is_empty() {
        x.open("section", &[("nullFlavor", "NI")])?;
    } else {
        x.open("section", &[])?;
    }
    x.template(s.template, None)?;
    x.template(s.template, Some(R21))?;
    x.empty(
        "code",
        &[
            ("code", s.code),
            ("codeSystem", LOINC),
            ("codeSystemName", "LOINC"),
            ("displayName", s.name),
        ],
    )?;
    x.text("title", &[], s.title)?;
    if rows.is_empty() {
        x.text("text", &[], "No information")?;
    } else {
        let prefix = s
            .title
            .split_whitespace()
            .next()
            .unwrap_or("row")
            .to_ascii_lowercase();
        let prefix = match prefix.as_str() {
            "allergies" => "allergy",
            "medications" => "medication",
            "problems" => "problem",
            "immunizations" => "immunization",
            "vital" => "vitals",
            "encounters" => "encounter",
            other => other,
        }
        .to_owned();
        x.open("text", &[])?;
        x.open("table", &[("border", "1"), ("width", "100%")])?;
        x.open("thead", &[])?;
        x.open("tr", &[])?;
        for header in s.headers {
            x.text("th", &[], header)?;
        }
        x.close("tr")?;
        x.close("thead")?;
        x.open("tbody", &[])?;
        for (i, row) in rows.iter().enumerate() {
            x.open("tr", &[])?;
            for (j, cell) in row.iter().enumerate() {
                if j == 0 {
                    x.text("td", &[("ID", format!("{prefix}{}", i + 1).as_str())], cell)?;
                } else {
                    x.text("td", &[], cell)?;
                }
            }
            x.close("tr")?;
        }
        x.close("tbody")?;
        x.close("table")?;
        x.close("text")?;
        entries(x)?;
    }
    x.close("section")?;
    x.close("component")
}

fn reference_text(x: &mut Xml, anchor: &str) -> Out {
    x.open("text", &[])?;
    x.empty("reference", &[("value", format!("#{anchor}").as_str())])?;
    x.close("text")
}

fn row_id(x: &mut Xml, row: &Row<'_>) -> Out {
    let uuid = text_of(row, "uuid");
    if uuid.is_empty() {
        x.empty("id", &[("nullFlavor", "NI")])
    } else {
        x.id(uuid)
    }
}

fn interval(x: &mut Xml, low: Option<&str>, high: Option<&str>) -> Out {
    x.open("effectiveTime", &[])?;
    x.time("low", low)?;
    if let Some(high) = high.and_then(hl7_time) {
        x.empty("high", &[("value", high.as_str())])?;
    }
    x.close("effectiveTime")
}

/// A coded value (`xsi:type="CD"`) from an OpenEMR code list, else its text only.
fn coded_value(x: &mut Xml, codes: &str, title: &str, anchor: &str) -> Out {
    let coded = listed(codes, &["SNOMED-CT", "SNOMED"])
        .map(|(_, c)| (c, SNOMED))
        .or_else(|| listed(codes, &["ICD10", "ICD10CM"]).map(|(_, c)| (c, ICD10CM)));
    match coded {
        Some((code, system)) => {
            x.open(
                "value",
                &[
                    ("xsi:type", "CD"),
                    ("code", code),
                    ("codeSystem", system),
                    ("displayName", title),
                ],
            )?;
            x.open("originalText", &[])?;
            x.empty("reference", &[("value", format!("#{anchor}").as_str())])?;
            x.close("originalText")?;
            x.close("value")
        }
        None => {
            x.open("value", &[("xsi:type", "CD"), ("nullFlavor", "OTH")])?;
            x.open("originalText", &[])?;
            x.empty("reference", &[("value", format!("#{anchor}").as_str())])?;
            x.close("originalText")?;
            x.close("value")
        }
    }
}

/// A concern act (problem or allergy) around `inner`.
fn concern(
    x: &mut Xml,
    row: &Row<'_>,
    template: (&str, &str),
    inner: impl FnOnce(&mut Xml) -> Out,
) -> Out {
    let active = text_of(row, "enddate").is_empty();
    x.open("entry", &[("typeCode", "DRIV")])?;
    x.open("act", &[("classCode", "ACT"), ("moodCode", "EVN")])?;
    x.template(template.0, None)?;
    x.template(template.0, Some(template.1))?;
    x.empty("id", &[("nullFlavor", "NI")])?;
    x.empty(
        "code",
        &[
            ("code", "CONC"),
            ("codeSystem", "2.16.840.1.113883.5.6"),
            ("displayName", "Concern"),
        ],
    )?;
    x.empty(
        "statusCode",
        &[("code", if active { "active" } else { "completed" })],
    )?;
    interval(x, row.text("begdate"), row.text("enddate"))?;
    x.open("entryRelationship", &[("typeCode", "SUBJ")])?;
    inner(x)?;
    x.close("entryRelationship")?;
    x.close("act")?;
    x.close("entry")
}

fn problem_entry(x: &mut Xml, row: &Row<'_>, anchor: &str) -> Out {
    concern(x, row, ("2.16.840.1.113883.10.20.22.4.3", R21), |x| {
        x.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")])?;
        x.template("2.16.840.1.113883.10.20.22.4.4", None)?;
        x.template("2.16.840.1.113883.10.20.22.4.4", Some(R21))?;
        row_id(x, row)?;
        x.empty(
            "code",
            &[
                ("code", "55607006"),
                ("codeSystem", SNOMED),
                ("displayName", "Problem"),
            ],
        )?;
        reference_text(x, anchor)?;
        x.empty("statusCode", &[("code", "completed")])?;
        interval(x, row.text("begdate"), row.text("enddate"))?;
        coded_value(x, text_of(row, "diagnosis"), text_of(row, "title"), anchor)?;
        x.close("observation")
    })
}

fn allergy_entry(x: &mut Xml, row: &Row<'_>, anchor: &str) -> Out {
    concern(x, row, ("2.16.840.1.113883.10.20.22.4.30", R21), |x| {
        x.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")])?;
        x.template("2.16.840.1.113883.10.20.22.4.7", None)?;
        x.template("2.16.840.1.113883.10.20.22.4.7", Some("2014-06-09"))?;
        row_id(x, row)?;
        x.empty("code", &[("code", "ASSERTION"), ("codeSystem", ACT_CODE)])?;
        reference_text(x, anchor)?;
        x.empty("statusCode", &[("code", "completed")])?;
        interval(x, row.text("begdate"), row.text("enddate"))?;
        x.empty(
            "value",
            &[
                ("xsi:type", "CD"),
                ("code", "419199007"),
                ("codeSystem", SNOMED),
                ("displayName", "Allergy to substance"),
            ],
        )?;
        x.open("participant", &[("typeCode", "CSM")])?;
        x.open("participantRole", &[("classCode", "MANU")])?;
        x.open("playingEntity", &[("classCode", "MMAT")])?;
        material_code(x, text_of(row, "diagnosis"), anchor)?;
        x.close("playingEntity")?;
        x.close("participantRole")?;
        x.close("participant")?;
        x.close("observation")
    })
}

/// A substance's code: RxNorm from the code list, else its text only.
fn material_code(x: &mut Xml, codes: &str, anchor: &str) -> Out {
    let attrs: Vec<(&str, &str)> = match listed(codes, &["RXNORM", "RXCUI"]) {
        Some((_, code)) => vec![("code", code), ("codeSystem", RXNORM)],
        None => vec![("nullFlavor", "OTH")],
    };
    x.open("code", &attrs)?;
    x.open("originalText", &[])?;
    x.empty("reference", &[("value", format!("#{anchor}").as_str())])?;
    x.close("originalText")?;
    x.close("code")
}

fn medication_entry(x: &mut Xml, row: &Row<'_>, anchor: &str) -> Out {
    let active = text_of(row, "enddate").is_empty();
    x.open("entry", &[("typeCode", "DRIV")])?;
    x.open(
        "substanceAdministration",
        &[("classCode", "SBADM"), ("moodCode", "EVN")],
    )?;
    x.template("2.16.840.1.113883.10.20.22.4.16", None)?;
    x.template("2.16.840.1.113883.10.20.22.4.16", Some("2014-06-09"))?;
    row_id(x, row)?;
    reference_text(x, anchor)?;
    x.empty(
        "statusCode",
        &[("code", if active { "active" } else { "completed" })],
    )?;
    x.open("effectiveTime", &[("xsi:type", "IVL_TS")])?;
    x.time("low", row.text("begdate"))?;
    match row.text("enddate").and_then(hl7_time) {
        Some(high) => x.empty("high", &[("value", high.as_str())])?,
        None => x.empty("high", &[("nullFlavor", "NI")])?,
    }
    x.close("effectiveTime")?;
    x.open("consumable", &[])?;
    x.open("manufacturedProduct", &[("classCode", "MANU")])?;
    x.template("2.16.840.1.113883.10.20.22.4.23", None)?;
    x.template("2.16.840.1.113883.10.20.22.4.23", Some("2014-06-09"))?;
    x.open("manufacturedMaterial", &[])?;
    material_code(x, text_of(row, "diagnosis"), anchor)?;
    x.close("manufacturedMaterial")?;
    x.close("manufacturedProduct")?;
    x.close("consumable")?;
    x.close("substanceAdministration")?;
    x.close("entry")
}

fn immunization_entry(x: &mut Xml, row: &Row<'_>, anchor: &str) -> Out {
    x.open("entry", &[("typeCode", "DRIV")])?;
    x.open(
        "substanceAdministration",
        &[
            ("classCode", "SBADM"),
            ("moodCode", "EVN"),
            ("negationInd", "false"),
        ],
    )?;
    x.template("2.16.840.1.113883.10.20.22.4.52", None)?;
    x.template("2.16.840.1.113883.10.20.22.4.52", Some(R21))?;
    row_id(x, row)?;
    reference_text(x, anchor)?;
    x.empty("statusCode", &[("code", "completed")])?;
    x.time("effectiveTime", row.text("administered"))?;
    x.open("consumable", &[])?;
    x.open("manufacturedProduct", &[("classCode", "MANU")])?;
    x.template("2.16.840.1.113883.10.20.22.4.54", None)?;
    x.template("2.16.840.1.113883.10.20.22.4.54", Some("2014-06-09"))?;
    x.open("manufacturedMaterial", &[])?;
    let cvx = text_of(row, "cvx_code");
    let name = text_of(row, "code_text");
    let attrs: Vec<(&str, &str)> = if cvx.is_empty() {
        vec![("nullFlavor", "OTH")]
    } else {
        vec![
            ("code", cvx),
            ("codeSystem", CVX),
            ("codeSystemName", "CVX"),
            ("displayName", name),
        ]
    };
    x.open("code", &attrs)?;
    x.open("originalText", &[])?;
    x.empty("reference", &[("value", format!("#{anchor}").as_str())])?;
    x.close("originalText")?;
    x.close("code")?;
    let lot = text_of(row, "lot_number");
    if !lot.is_empty() {
        x.text("lotNumberText", &[], lot)?;
    }
    x.close("manufacturedMaterial")?;
    x.close("manufacturedProduct")?;
    x.close("consumable")?;
    x.close("substanceAdministration")?;
    x.close("entry")
}

/// A vital sign a row may hold: column, LOINC code, name, UCUM unit.
type Vital = (&'static str, &'static str, &'static str, &'static str);

/// The vital signs a row may hold.
const VITALS: &[Vital] = &[
    ("bps", "8480-6", "Systolic blood pressure", "mm[Hg]"),
    ("bpd", "8462-4", "Diastolic blood pressure", "mm[Hg]"),
    ("pulse", "8867-4", "Heart rate", "/min"),
    ("respiration", "9279-1", "Respiratory rate", "/min"),
    ("temperature", "8310-5", "Body temperature", "[degF]"),
    ("weight", "29463-7", "Body weight", "[lb_av]"),
    ("height", "8302-2", "Body height", "[in_i]"),
    (
        "oxygen_saturation",
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
        "%",
    ),
    ("bmi", "39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
];

fn vitals_entry(x: &mut Xml, row: &Row<'_>, anchor: &str) -> Out {
    let measured: Vec<(&Vital, String)> = VITALS
        .iter()
        .filter_map(|v| number(row, v.0).map(|n| (v, n)))
        .collect();
    if measured.is_empty() {
        return Ok(());
    }
    x.open("entry", &[("typeCode", "DRIV")])?;
    x.open(
        "organizer",
        &[("classCode", "CLUSTER"), ("moodCode", "EVN")],
    )?;
    x.template("2.16.840.1.113883.10.20.22.4.26", None)?;
    x.template("2.16.840.1.113883.10.20.22.4.26", Some(R21))?;
    row_id(x, row)?;
    x.open(
        "code",
        &[
            ("code", "46680005"),
            ("codeSystem", SNOMED),
            ("displayName", "Vital Signs"),
        ],
    )?;
    x.empty(
        "translation",
        &[
            ("code", "74728-7"),
            ("codeSystem", LOINC),
            (
                "displayName",
                "Vital signs, weight, height, head circumference, oximetry, BMI, and BSA panel",
            ),
        ],
    )?;
    x.close("code")?;
    x.empty("statusCode", &[("code", "completed")])?;
    x.time("effectiveTime", row.text("taken"))?;
    for (&(_, code, name, unit), value) in measured {
        x.open("component", &[])?;
        x.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")])?;
        x.template("2.16.840.1.113883.10.20.22.4.27", None)?;
        x.template("2.16.840.1.113883.10.20.22.4.27", Some("2014-06-09"))?;
        x.empty("id", &[("nullFlavor", "NI")])?;
        x.empty(
            "code",
            &[("code", code), ("codeSystem", LOINC), ("displayName", name)],
        )?;
        reference_text(x, anchor)?;
        x.empty("statusCode", &[("code", "completed")])?;
        x.time("effectiveTime", row.text("taken"))?;
        x.empty(
            "value",
            &[
                ("xsi:type", "PQ"),
                ("value", value.as_str()),
                ("unit", unit),
            ],
        )?;
        x.close("observation")?;
        x.close("component")?;
    }
    x.close("organizer")?;
    x.close("entry")
}

fn encounter_entry(x: &mut Xml, row: &Row<'_>, anchor: &str) -> Out {
    let class = text_of(row, "class_code");
    let class = if class.is_empty() { "AMB" } else { class };
    x.open("entry", &[("typeCode", "DRIV")])?;
    x.open("encounter", &[("classCode", "ENC"), ("moodCode", "EVN")])?;
    x.template("2.16.840.1.113883.10.20.22.4.49", None)?;
    x.template("2.16.840.1.113883.10.20.22.4.49", Some(R21))?;
    row_id(x, row)?;
    x.open("code", &[("code", class), ("codeSystem", ACT_CODE)])?;
    x.open("originalText", &[])?;
    x.empty("reference", &[("value", format!("#{anchor}").as_str())])?;
    x.close("originalText")?;
    x.close("code")?;
    reference_text(x, anchor)?;
    x.time("effectiveTime", row.text("seen"))?;
    x.close("encounter")?;
    x.close("entry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_dates_become_hl7_timestamps() {
        assert_eq!(hl7_time("2024-10-01").as_deref(), Some("20241001"));
        assert_eq!(
            hl7_time("2024-10-01 09:05:00").as_deref(),
            Some("20241001090500+0000")
        );
        assert_eq!(hl7_time(""), None);
        assert_eq!(hl7_time("0000-00-00"), None);
    }

    #[test]
    fn code_lists_give_the_first_code_of_a_system() {
        assert_eq!(
            listed("ICD10:I10;SNOMED-CT:38341003", &["SNOMED-CT"]),
            Some(("SNOMED-CT", "38341003"))
        );
        assert_eq!(listed("ICD10:I10", &["RXNORM"]), None);
    }
}
