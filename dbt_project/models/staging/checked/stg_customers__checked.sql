-- Every landing row of customers, parsed and checked once: in the night its file arrived
-- (or changed). The checks here do not depend on ds; stg_customers__classified gives each row its status for ds.
with source_rows as (
    {{ landing_rows('customers', ['customer_id', 'signup_at', 'email', 'first_name', 'country', 'city', 'language',
                        'birth_year', 'gender', 'device_type', 'acquisition_channel']) }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_customer_id') }} as customer_id,
        {{ parse_timestamp('raw_signup_at') }} as signup_at,
        lower({{ clean_text('raw_email') }}) as email,
        {{ clean_text('raw_first_name') }} as first_name,
        upper({{ clean_text('raw_country') }}) as country,
        {{ clean_text('raw_city') }} as city,
        lower({{ clean_text('raw_language') }}) as language,
        {{ parse_integer('raw_birth_year') }} as birth_year,
        lower({{ clean_text('raw_gender') }}) as gender,
        lower({{ clean_text('raw_device_type') }}) as device_type,
        lower({{ clean_text('raw_acquisition_channel') }}) as acquisition_channel
    from source_rows
),

-- The birth year's upper bound is the year of ds, checked by stg_customers__classified between the
-- checks before it (reject_reason_before_birth_year) and those after it (reject_reason_after_birth_year),
-- so the first failing check still gives the reason.
checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('signup_at') }}
            {{ reject_unparseable('signup_at', 'timestamp') }}
            {{ reject_unparseable('birth_year', 'number') }}
        end as reject_reason_before_birth_year,
        case
            {# Both leave the platform (the email file, the call center's language): each must be
               what the contract says, not free text a spreadsheet could run. #}
            {{ reject_not_matching('email', email_pattern(), 'an email address') }}
            {{ reject_not_matching('language', language_pattern(), 'a language code such as en or pt-br') }}
        end as reject_reason_after_birth_year
    from parsed
)

select * from checked
