-- One row per landing row of customers, parsed, with its status for ds and the reason.
with source_rows as (
    select
        {{ raw_columns(['customer_id', 'signup_at', 'email', 'country', 'city', 'language',
                        'birth_year', 'gender', 'device_type', 'acquisition_channel']) }}
    from {{ source('landing', 'customers') }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_customer_id') }} as customer_id,
        {{ parse_timestamp('raw_signup_at') }} as signup_at,
        lower({{ clean_text('raw_email') }}) as email,
        upper({{ clean_text('raw_country') }}) as country,
        {{ clean_text('raw_city') }} as city,
        lower({{ clean_text('raw_language') }}) as language,
        {{ parse_integer('raw_birth_year') }} as birth_year,
        lower({{ clean_text('raw_gender') }}) as gender,
        lower({{ clean_text('raw_device_type') }}) as device_type,
        lower({{ clean_text('raw_acquisition_channel') }}) as acquisition_channel
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('customer_id') }}
            {{ reject_missing('signup_at') }}
            {{ reject_unparseable('signup_at', 'timestamp') }}
            {{ reject_unparseable('birth_year', 'number') }}
            {{ reject_out_of_range('birth_year', 'birth_year between 1900 and year(' ~ ds() ~ ')',
                                   'expected a year from 1900 to the year of ds') }}
            {# Both leave the platform (the email file, the call center's language): each must be
               what the contract says, not free text a spreadsheet could run. #}
            {{ reject_not_matching('email', email_pattern(), 'an email address') }}
            {{ reject_not_matching('language', language_pattern(), 'a language code such as en or pt-br') }}
        end as reject_reason
    from parsed
)

{{ classify_rows(
    'checked',
    key_columns=['customer_id'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='signup_at >= ' ~ ds_end(),
) }}
