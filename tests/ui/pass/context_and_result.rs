use jobs::prelude::*;

#[job]
async fn flaky(ctx: JobContext, succeed_on: u32) -> Result<(), String> {
    if ctx.attempt() < succeed_on {
        Err(format!("failed attempt {}", ctx.attempt()))
    } else {
        Ok(())
    }
}

fn main() {
    let _ = Flaky { succeed_on: 3 };
}
