// An argument only has to be storable: `Debug` and `Clone` of the generated
// struct exist when every argument has them, and are not required.
use jobs::prelude::*;

#[derive(serde::Serialize, serde::Deserialize)]
struct Opaque {
    id: i64,
}

#[job]
async fn handle_opaque(value: Opaque) {
    let _ = value.id;
}

#[job]
async fn cloneable(value: String) {
    let _ = value;
}

fn main() {
    let _ = HandleOpaque {
        value: Opaque { id: 1 },
    };
    let job = Cloneable {
        value: "x".to_owned(),
    };
    let _ = format!("{:?}", job.clone());
}
