"""The second host's MAPPING: its own field names, a postal address, an account number."""


def map_member(member) -> dict:
    return {
        "Name": member.display_name,
        "EmailAddress": member.email_address,
        "AccountNumber": f"CLUB-{member.club_id}",
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": member.phone_number}],
        "Addresses": [{"AddressType": "POBOX", "City": member.town}],
    }
