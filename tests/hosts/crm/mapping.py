"""The second host's MAPPING and REVERSE_MAPPING: its own field names, a postal address, an
account number."""


def map_member(member) -> dict:
    return {
        "Name": member.display_name,
        "EmailAddress": member.email_address,
        "AccountNumber": f"CLUB-{member.club_id}",
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": member.phone_number}],
        "Addresses": [{"AddressType": "POBOX", "City": member.town}],
    }


def unmap_member(contact: dict, member) -> dict:
    """What Xero's corrections become in a member: the fields map_member sends, backwards.

    The account number is made from the club: it never flows back.
    """
    values = {}
    if "Name" in contact:
        values["display_name"] = contact["Name"]
    if "EmailAddress" in contact:
        values["email_address"] = contact["EmailAddress"]
    for phone in contact.get("Phones") or []:
        if phone.get("PhoneType") == "DEFAULT":
            values["phone_number"] = phone.get("PhoneNumber") or ""
    for address in contact.get("Addresses") or []:
        if address.get("AddressType") == "POBOX":
            values["town"] = address.get("City") or ""
    return values
