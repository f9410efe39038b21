-- Every landing row of served decisions (what the online service answered, ml.serving), parsed and
-- checked once: in the night its file arrived. stg_served_decisions__classified gives each row its
-- status for ds.
with source_rows as (
    {{ landing_rows('served_decisions', ['decision_id', 'served_at', 'ds', 'customer_id', 'anonymous_id',
                                         'channel', 'audience', 'experiment_group', 'experiment_version',
                                         'assignment_probability', 'recommender_version', 'context_item',
                                         'default_experience', 'decision_reason']) }}
),

parsed as (
    select
        *,
        {{ clean_text('raw_decision_id') }} as decision_id,
        {{ parse_timestamp('raw_served_at') }} as served_at,
        try_cast({{ clean_text('raw_ds') }} as date) as decision_ds,
        {{ clean_text('raw_customer_id') }} as customer_id,
        {{ clean_text('raw_anonymous_id') }} as anonymous_id,
        lower({{ clean_text('raw_channel') }}) as channel,
        {{ clean_text('raw_audience') }} as audience,
        {{ clean_text('raw_experiment_group') }} as experiment_group,
        {{ clean_text('raw_experiment_version') }} as experiment_version,
        try_cast({{ clean_text('raw_assignment_probability') }} as double) as assignment_probability,
        {{ clean_text('raw_recommender_version') }} as recommender_version,
        {{ clean_text('raw_context_item') }} as context_item,
        {{ parse_boolean('raw_default_experience') }} as default_experience,
        {{ clean_text('raw_decision_reason') }} as decision_reason
    from source_rows
),

checked as (
    select
        *,
        case
            {{ reject_unreadable() }}
            {{ reject_missing('decision_id') }}
            {{ reject_missing('served_at') }}
            {{ reject_missing('ds') }}
            {{ reject_missing('channel') }}
            {{ reject_unparseable('served_at', 'timestamp') }}
            when decision_ds is null then 'unparseable_date: ds = ''' || raw_ds || ''' is not a valid date'
            when customer_id is null and anonymous_id is null
                then 'missing_required: customer_id and anonymous_id are both empty'
        end as reject_reason
    from parsed
)

select * from checked
