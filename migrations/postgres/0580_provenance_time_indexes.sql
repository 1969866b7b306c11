-- Indexes for Provenance's _lastUpdated (issue 15: searches over 100k patients use
-- indexes). Provenance searches every US Core target branch by branch
-- (hearth_fhir::provenance::branches), each condition rewritten with the branch's own
-- expression of the target's last change; migrations 0481 and 0560 index those of the
-- patients, encounters, list items, care plan forms, vitals, tobacco use and laboratory
-- results. These hold the others, each on exactly the expression the branch compares
-- (an expression index serves a condition on exactly its expression, on both
-- databases), so a _lastUpdated search reads the rows that changed in the range instead
-- of every target row and its patient. A diagnostic report's last change spans its
-- order (COALESCE(pr.date_report, pr.date_collected, po.date_ordered)): it is narrowed
-- through the indexes of those three columns (migration 0560). Same indexes as
-- sqlite/0580_provenance_time_indexes.sql.
CREATE INDEX users_last_updated ON users (last_updated);
CREATE INDEX immunizations_updated ON immunizations ((COALESCE(update_date, create_date)));
CREATE INDEX form_care_plan_type_date ON form_care_plan (care_plan_type, date);
CREATE INDEX care_teams_updated ON care_teams ((COALESCE(date_updated, date_created)));
CREATE INDEX insurance_data_updated ON insurance_data ((COALESCE(last_updated, date)));
CREATE INDEX contact_relation_updated ON contact_relation ((COALESCE(updated_date, created_date)));
CREATE INDEX procedure_order_updated ON procedure_order ((COALESCE(date_transmitted, date_ordered)));
CREATE INDEX procedure_specimen_updated ON procedure_specimen ((COALESCE(updated_at, created_at, collected_date)));
CREATE INDEX drug_sales_updated ON drug_sales ((COALESCE(last_updated, sale_date)));
CREATE INDEX documents_updated ON documents ((COALESCE(revision, date)));
CREATE INDEX prescriptions_updated ON prescriptions ((COALESCE(date_modified, date_added)));
