-- MedicationRequest's `requester` search (and `_include=MedicationRequest:requester`):
-- a listed medication names its author by user name, a prescription its provider by id;
-- these indexes find a practitioner's rows without reading every list item or
-- prescription. Same indexes as postgres/0570_medication_requester.sql.
CREATE INDEX lists_type_user ON lists (type, "user");
CREATE INDEX prescriptions_provider ON prescriptions (provider_id);
