-- One row per landing row of customers, parsed, with its status for ds and the reason.
with checked_rows as (
    select *
    from {{ ref('stg_customers__checked') }}
),

checked as (
    select
        {{ star_except(['reject_reason_before_birth_year', 'reject_reason_after_birth_year']) }},
        coalesce(
            reject_reason_before_birth_year,
            case
                {{ reject_out_of_range('birth_year', 'birth_year between 1900 and year(' ~ ds() ~ ')',
                                       'expected a year from 1900 to the year of ds') }}
            end,
            reject_reason_after_birth_year
        ) as reject_reason
    from checked_rows
)

{{ classify_rows(
    'checked',
    key_columns=['customer_id'],
    erased_when='customer_id in ' ~ erased_customer_ids(),
    later_dated_when='signup_at >= ' ~ ds_end(),
) }}
