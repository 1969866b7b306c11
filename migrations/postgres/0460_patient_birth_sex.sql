-- A patient's sex assigned at birth, for US Core's `us-core-birthsex` extension:
-- `M`, `F` or `UNK` (the US Core birth sex value set), NULL when not recorded. OpenEMR's
-- patient_data has no such column; the standard API reads and writes it as `birth_sex`.
-- Same column as sqlite/0460_patient_birth_sex.sql.
ALTER TABLE patient_data ADD COLUMN birth_sex TEXT;
