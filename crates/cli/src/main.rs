//! The `warifu` command.

fn main() {
    println!("warifu: commands are being built; see README.md");
}
