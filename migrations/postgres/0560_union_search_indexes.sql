-- Indexes for the FHIR searches over derived tables (issue 15: searches over 100k
-- patients use indexes). Observation and Provenance push each search condition into
-- each branch of their UNION ALL (hearth_fhir::branches), rewritten with the branch's
-- own expressions; these indexes hold the expressions a branch compares that no index
-- held: the last change of a vitals form, a tobacco-use row, a list item (allergies,
-- problems, medications, surgeries, devices: with the item's type) and a care plan form
-- (the Provenance of each), and a laboratory result's code. An expression index serves
-- a condition on exactly its expression, on both databases. Same indexes as
-- sqlite/0560_union_search_indexes.sql.
CREATE INDEX form_vitals_updated ON form_vitals ((COALESCE(last_updated, date)));
CREATE INDEX history_data_updated ON history_data ((COALESCE(last_updated, date)));
CREATE INDEX lists_type_updated ON lists (type, (COALESCE(modifydate, date)));
CREATE INDEX forms_formdir_date ON forms (formdir, date);
CREATE INDEX procedure_result_code ON procedure_result (result_code);
-- A laboratory result's last change and effective time are COALESCEs over the result,
-- its report and its order: a condition on them reads the rows each of these times
-- meets, through these indexes (hearth_fhir::tables, LAB_UPDATED and LAB_EFFECTIVE).
CREATE INDEX procedure_result_date ON procedure_result (date);
CREATE INDEX procedure_report_date_report ON procedure_report (date_report);
CREATE INDEX procedure_report_date_collected ON procedure_report (date_collected);
CREATE INDEX procedure_order_date_ordered ON procedure_order (date_ordered);
CREATE INDEX procedure_order_date_collected ON procedure_order (date_collected);
