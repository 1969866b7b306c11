//! The address and telecom search parameters every type with an address declares
//! alike (Patient, Practitioner, Person, Organization, Location, …), declared once.
//!
//! [`contact_params!`](crate::contact_params) writes a type's whole parameter list: the
//! type's own parameters first, then `address`, `address-city`, `address-state`,
//! `address-postalcode` (and `address-country` when a country column is named), `phone`,
//! `email` and `telecom`, each with its FHIRPath expression under the type's name.

/// A type's search parameters, followed by its address and telecom parameters.
///
/// `address` lists every column the whole-address search looks in; `phone` and `email`
/// list the columns holding phone numbers and e-mail addresses (`telecom` searches
/// both). `country` is optional.
///
/// ```
/// use hearth_fhir::{Param, Target};
///
/// const PARAMS: &[Param] = &hearth_fhir::contact_params!(
///     type = "Location",
///     address = ["f.street", "f.city", "f.state", "f.postal_code"],
///     city = "f.city",
///     state = "f.state",
///     postalcode = "f.postal_code",
///     phone = ["f.phone", "f.fax"],
///     email = ["f.email"],
///     params = [Param::new("name", "Location.name", Target::Text(&["f.name"]))],
/// );
/// assert_eq!(PARAMS.len(), 8);
/// assert_eq!(PARAMS[2].expression, "Location.address.city");
/// ```
#[macro_export]
macro_rules! contact_params {
    (type = $ty:literal,
     address = [$($address:literal),+ $(,)?],
     city = $city:literal,
     state = $state:literal,
     postalcode = $postal:literal,
     $(country = $country:literal,)?
     phone = [$($phone:literal),* $(,)?],
     email = [$($email:literal),* $(,)?],
     params = [$($param:expr),* $(,)?] $(,)?) => {
        [
            $($param,)*
            $crate::Param::new(
                "address",
                concat!($ty, ".address"),
                $crate::Target::Text(&[$($address),+]),
            ),
            $crate::Param::new(
                "address-city",
                concat!($ty, ".address.city"),
                $crate::Target::Text(&[$city]),
            ),
            $crate::Param::new(
                "address-state",
                concat!($ty, ".address.state"),
                $crate::Target::Text(&[$state]),
            ),
            $crate::Param::new(
                "address-postalcode",
                concat!($ty, ".address.postalCode"),
                $crate::Target::Text(&[$postal]),
            ),
            $($crate::Param::new(
                "address-country",
                concat!($ty, ".address.country"),
                $crate::Target::Text(&[$country]),
            ),)?
            $crate::Param::new(
                "phone",
                concat!($ty, ".telecom.where(system='phone')"),
                $crate::Target::Token(&[$($crate::TokenColumn::new($phone, None)),*]),
            ),
            $crate::Param::new(
                "email",
                concat!($ty, ".telecom.where(system='email')"),
                $crate::Target::Token(&[$($crate::TokenColumn::new($email, None)),*]),
            ),
            $crate::Param::new(
                "telecom",
                concat!($ty, ".telecom"),
                $crate::Target::Token(&[
                    $($crate::TokenColumn::new($phone, None),)*
                    $($crate::TokenColumn::new($email, None),)*
                ]),
            ),
        ]
    };
}

#[cfg(test)]
mod tests {
    use crate::{Kind, Param, Target};

    const WITH_COUNTRY: &[Param] = &crate::contact_params!(
        type = "Patient",
        address = ["p.street", "p.city"],
        city = "p.city",
        state = "p.state",
        postalcode = "p.postal_code",
        country = "p.country_code",
        phone = ["p.phone_home", "p.phone_cell"],
        email = ["p.email"],
        params = [],
    );

    #[test]
    fn every_address_and_telecom_parameter_is_declared_under_the_type() {
        let names: Vec<&str> = WITH_COUNTRY.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "address",
                "address-city",
                "address-state",
                "address-postalcode",
                "address-country",
                "phone",
                "email",
                "telecom"
            ]
        );
        assert_eq!(WITH_COUNTRY[4].expression, "Patient.address.country");
        let Target::Token(telecom) = WITH_COUNTRY[7].target else {
            panic!("telecom is a token")
        };
        let columns: Vec<&str> = telecom.iter().map(|c| c.column).collect();
        assert_eq!(columns, ["p.phone_home", "p.phone_cell", "p.email"]);
        assert_eq!(WITH_COUNTRY[0].target.kind(), Kind::String);
    }
}
