-- A medication dispense's fill type (US Core MedicationDispense.type: first fill or
-- refill) asks whether an earlier sale filled the same prescription, once per dispense
-- read; without this index every such question read all of drug_sales, so a page of
-- dispenses cost its size times the table and the Bulk Data export of MedicationDispense
-- grew with the square of the table (a 1,000-dispense page of a 2,000-patient site took
-- over 2 s of CPU). Same index as postgres/0590_dispense_fill_index.sql.
CREATE INDEX drug_sales_prescription ON drug_sales (prescription_id, sales_id);
